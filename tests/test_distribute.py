"""One MirroredStrategy step over 2 replicas equals one single-device step
on the same global meta-batch (in a subprocess: logical devices must be set
before TensorFlow starts)."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("algorithm", ["MAML", "Reptile"])
def test_mirrored_step_equals_single_device_step(algorithm):
    result = subprocess.run(
        [sys.executable, "-m", "tests.distribute_worker", algorithm], cwd=ROOT,
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])[algorithm]
    assert figures["moved"] > 1e-3
    assert figures["difference"] < 1e-5, figures
