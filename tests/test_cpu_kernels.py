"""`import keras_meta` turns on TensorFlow's oneDNN CPU kernels unless the
user chose otherwise (TensorFlow itself turns them on only on CPUs with
AVX-512 VNNI/BF16 or AMX)."""

import os
import subprocess
import sys

import pytest

IMPORT_FIRST = "import keras_meta, tensorflow"
ON = "oneDNN custom operations are on"


def tensorflow_log(setting):
    """TensorFlow's start-up log in a fresh process that imports keras_meta
    first, with TF_ENABLE_ONEDNN_OPTS unset (None) or set to `setting`."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPP_MIN_LOG_LEVEL")}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    result = subprocess.run([sys.executable, "-c", IMPORT_FIRST], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


@pytest.mark.parametrize("setting, turned_on", [(None, True), ("0", False)])
def test_onednn_kernels_are_on_unless_the_user_says_otherwise(setting, turned_on):
    assert (ON in tensorflow_log(setting)) == turned_on
