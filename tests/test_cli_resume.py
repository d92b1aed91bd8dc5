"""`python -m keras_meta.train` killed with SIGKILL after a backup and run
again with the same flags finishes with the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np

from keras_meta.backup import STATE

FLAGS = ["--dataset=sinusoid", "--iterations=60", "--log_every=20", "--meta_batch_size=4",
         "--val_tasks=0", "--test_tasks=4", "--export=false", "--verbose=0"]


def command(out):
    return [sys.executable, "-m", "keras_meta.train", *FLAGS, f"--output_dir={out}"]


def run(out, kill_after_first_backup=False):
    """Runs the CLI to completion, or SIGKILLs it once its first backup is
    committed. Returns the exit code (−9 when killed)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    if kill_after_first_backup:
        state = os.path.join(out, "backup", STATE)
        while process.poll() is None and not os.path.exists(state):
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode in (0, -signal.SIGKILL), stderr.decode()[-3000:]
    return process.returncode


def final_weights(out):
    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    return [np.array(w) for w in model.weights]


def test_killed_cli_run_resumes_to_the_uninterrupted_weights(tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert run(reference) == 0
    assert run(resumed, kill_after_first_backup=True) == -signal.SIGKILL
    assert not os.path.exists(resumed / "model.keras")  # it died mid-training
    assert run(resumed) == 0
    with open(resumed / "results.json") as file:
        trained = json.load(file)["train"]
    assert 0 < trained["iterations_this_process"] < trained["iterations"] == 60
    want, got = final_weights(reference), final_weights(resumed)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
