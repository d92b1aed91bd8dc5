"""Shared test set-up: quiet TensorFlow, float64 on request."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def float64():
    """Runs a test with Keras's default float type and dtype policy float64."""
    previous_floatx, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)


from tests.data_fixtures import omniglot_data_dir, omniglot_reference  # noqa: E402,F401
