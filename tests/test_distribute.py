"""One MirroredStrategy step over 2 replicas equals one single-device step
on the same global meta-batch (in a subprocess: logical devices must be set
before TensorFlow starts)."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
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


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow  # about a minute: three TensorFlow processes
def test_two_workers_end_equal_to_one_process(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tests.multi_worker", str(tmp_path / f"worker{index}.npy")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    single = subprocess.run([sys.executable, "-m", "tests.multi_worker", str(tmp_path / "one.npy")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    try:
        for process in processes:
            _, stderr = process.communicate(timeout=600)
            assert process.returncode == 0, stderr[-3000:]
    finally:
        for process in processes:
            process.kill()
    assert single.returncode == 0, single.stderr[-3000:]
    first, second, one = (np.load(tmp_path / f"{n}.npy") for n in ("worker0", "worker1", "one"))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, one, rtol=1e-5, atol=1e-6)
