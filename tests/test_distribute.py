"""tf.distribute: one MirroredStrategy step over 2 replicas equals one
single-device step on the same global meta-batch (in a subprocess: logical
devices must be set before TensorFlow starts); two MultiWorkerMirroredStrategy
workers on 127.0.0.1 split each global meta-batch and end equal to one
process."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


# One algorithm of each kind of meta-gradient runs by default (the inner-loop engine, the
# metric models' global and per-task batch statistics, a model-based learner, a baseline);
# the others with `-m slow`.
MIRRORED = ["MAML", "ProtoNet", "ProtoNetPerTask", "SNAIL", "MultiTask"]
MIRRORED_SLOW = ["Reptile", "MetaSGD", "ANIL", "MAMLPlusPlus", "MatchingNet", "RelationNet",
                 "LEO", "MetaLSTM"]


def mirrored_worker_figures(algorithms):
    """The worker's figures for each of `algorithms`, from one process."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.distribute_worker", *algorithms], cwd=ROOT,
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def mirrored_figures():
    return mirrored_worker_figures(MIRRORED)


@pytest.fixture(scope="module")
def mirrored_figures_slow():
    return mirrored_worker_figures(MIRRORED_SLOW)


@pytest.mark.parametrize("algorithm", [
    *MIRRORED, *(pytest.param(name, marks=pytest.mark.slow) for name in MIRRORED_SLOW)])
def test_mirrored_step_equals_single_device_step(algorithm, request):
    group = "mirrored_figures" if algorithm in MIRRORED else "mirrored_figures_slow"
    figures = request.getfixturevalue(group)[algorithm]
    assert figures["moved"] > 1e-3
    assert figures["difference"] < 1e-5, figures
    assert figures["loss_difference"] < 1e-4, figures


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_cluster_and_single_process(module, tmp_path, suffix):
    """Runs `python -m module FILE` as both workers of a two-worker cluster
    on 127.0.0.1 (TF_CONFIG) and as one process without a cluster; the
    processes always exit. Returns the files written by worker 0, worker 1
    and the single process."""
    outputs = [tmp_path / f"{name}{suffix}" for name in ("worker0", "worker1", "one")]
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", module, str(outputs[index])],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        single = subprocess.run([sys.executable, "-m", module, str(outputs[2])],
                                cwd=ROOT, capture_output=True, text=True, timeout=600)
        for process in processes:
            _, stderr = process.communicate(timeout=600)
            assert process.returncode == 0, stderr[-3000:]
    finally:
        for process in processes:
            process.kill()
    assert single.returncode == 0, single.stderr[-3000:]
    return outputs


@pytest.mark.slow  # about a minute: three TensorFlow processes
def test_two_workers_end_equal_to_one_process(tmp_path):
    first, second, one = map(np.load, run_cluster_and_single_process(
        "tests.multi_worker", tmp_path, ".npy"))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, one, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # three TensorFlow processes, two of them a cluster
def test_workers_receive_disjoint_halves_of_each_global_meta_batch(tmp_path):
    """Both workers build the same seeded stream; `fit`'s
    `experimental_distribute_dataset` (default auto-shard policy) gives
    worker 0 the first half of the tasks of every global meta-batch and
    worker 1 the second half."""
    first, second, one = map(np.load, run_cluster_and_single_process(
        "tests.shard_worker", tmp_path, ".npz"))
    assert sorted(one.files) == ["images", "sinusoid"]
    for stream in one.files:
        tasks = one[stream].shape[1]
        np.testing.assert_array_equal(first[stream], one[stream][:, :tasks // 2])
        np.testing.assert_array_equal(second[stream], one[stream][:, tasks // 2:])


@pytest.mark.slow  # a TensorFlow process with two logical devices, about 40 s each
@pytest.mark.parametrize("algorithm", ["MAML", "ProtoNet"])
def test_checkpoints_restore_across_strategies(algorithm):
    """`.keras` and `.weights.h5` checkpoints written under MirroredStrategy
    restore without a strategy, and the reverse, with the same weights
    (batch norm's moving statistics included) and predictions."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.checkpoint_worker", algorithm], cwd=ROOT,
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])[algorithm]
    assert sorted(figures) == sorted(f"{direction}{suffix}"
                                     for direction in ("mirrored->none", "none->mirrored")
                                     for suffix in (".keras", ".weights.h5"))
    for name, restored in figures.items():
        assert restored["distributed"] == name.startswith("none->"), name
        assert restored["weights"] == 0.0, (name, restored)
        assert restored["predictions"] < 1e-6, (name, restored)
