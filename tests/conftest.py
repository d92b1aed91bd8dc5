"""Shared test set-up: quiet TensorFlow, float64 on request, cheap full
garbage collections."""

import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def earlier_modules_objects_frozen():
    """Moves what earlier test modules left in the process (about two million
    objects late in the suite: traced functions, models) out of the garbage
    collector's reach, so that the full collections that `clear_session` and
    KerasTuner's trials run scan this module's objects only, not the whole
    suite's (they took most of the tuner tests' time in a full run)."""
    gc.collect()
    gc.freeze()
    yield


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


@pytest.fixture
def op_determinism():
    """Runs a test with TensorFlow's op determinism on (bit-reproducible ops)."""
    from tensorflow.python.framework import config  # disable_op_determinism is not public

    was_enabled = config.is_op_determinism_enabled()
    config.enable_op_determinism()
    try:
        yield
    finally:
        if not was_enabled:
            config.disable_op_determinism()


from tests.data_fixtures import omniglot_data_dir, omniglot_reference  # noqa: E402,F401
