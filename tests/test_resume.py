"""Crash-resume: episode streams that start at the restored meta-iteration,
atomic backups, and processes killed with SIGKILL that finish bit-identical
to an uninterrupted run."""

import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta.backup import STATE, AtomicBackupAndRestore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "resume_worker.py")


def first_batch(dataset):
    inputs, query_y = next(iter(dataset))
    return np.concatenate([inputs["support_x"].numpy().ravel(), query_y.numpy().ravel()])


def test_integer_start_skips_to_that_batch():
    skipped = first_batch(km.data.sinusoid_episodes(meta_batch_size=2, seed=3).skip(4))
    started = first_batch(km.data.sinusoid_episodes(meta_batch_size=2, seed=3, start=4))
    np.testing.assert_array_equal(started, skipped)
    assert not np.array_equal(started, first_batch(km.data.sinusoid_episodes(meta_batch_size=2,
                                                                            seed=3)))


def test_image_episodes_take_start_too():
    images = np.random.default_rng(0).normal(size=(24, 4, 4, 1)).astype("float32")
    source = tf.data.Dataset.from_tensor_slices((images, np.repeat(np.arange(6), 4)))

    def stream(**kwargs):
        return km.data.episodes(source, ways=2, shots=1, query_shots=1, meta_batch_size=2,
                                seed=1, **kwargs)

    np.testing.assert_array_equal(first_batch(stream(start=5)), first_batch(stream().skip(5)))


def test_variable_start_is_read_when_iteration_begins():
    position = keras.Variable(0, dtype="int64", trainable=False)
    stream = km.data.sinusoid_episodes(meta_batch_size=2, seed=0, start=position)
    reference = km.data.sinusoid_episodes(meta_batch_size=2, seed=0)
    position.assign(7)
    np.testing.assert_array_equal(first_batch(stream), first_batch(reference.skip(7)))
    position.assign(2)
    np.testing.assert_array_equal(first_batch(stream), first_batch(reference.skip(2)))


@pytest.mark.parametrize("start", [-1, 1.5, "0", keras.Variable(0.0), tf.Variable([0, 1])])
def test_bad_start(start):
    with pytest.raises(ValueError, match="`start` must be"):
        km.data.sinusoid_episodes(start=start)


class Crash(keras.callbacks.Callback):
    """Raises `KeyboardInterrupt` when epoch `epoch` begins (a process dying there)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def sinusoid_maml(backup_dir=None, resumable=True):
    """A fresh seeded MAML, its training stream and callbacks: with
    `backup_dir`, an `AtomicBackupAndRestore` whose `start_iteration` starts
    the stream if `resumable` (else the stream starts at 0)."""
    keras.utils.set_random_seed(0)
    model = km.MAML(km.learners.mlp(hidden=(8,)), inner_lr=0.01)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model(next(iter(km.data.sinusoid_episodes(meta_batch_size=1)))[0])  # builds it
    backups = [] if backup_dir is None else [AtomicBackupAndRestore(backup_dir)]
    start = backups[0].start_iteration if backups and resumable else 0
    return model, km.data.sinusoid_episodes(meta_batch_size=3, seed=0, start=start), backups


def weights(model):
    return [v.numpy() for v in model.weights] + [model.optimizer.iterations.numpy()]


def fit(model, stream, callbacks=()):
    return model.fit(stream, steps_per_epoch=3, epochs=4, verbose=0, callbacks=list(callbacks))


def interrupted_then_resumed(backup_dir, resumable):
    model, stream, backups = sinusoid_maml(backup_dir, resumable)
    with pytest.raises(KeyboardInterrupt):
        fit(model, stream, [*backups, Crash(epoch=2)])
    model, stream, backups = sinusoid_maml(backup_dir, resumable)
    history = fit(model, stream, backups)
    assert int(backups[0].start_iteration) == 6
    return model, history


def test_resumed_run_is_bit_identical_and_a_restarted_stream_is_not(tmp_path, op_determinism):
    model, stream, _ = sinusoid_maml()
    fit(model, stream)
    expected = weights(model)

    resumed, history = interrupted_then_resumed(tmp_path / "backup", resumable=True)
    assert history.epoch == [2, 3]
    assert not (tmp_path / "backup").exists()  # removed when fit completes
    assert len(weights(resumed)) == len(expected)
    for got, want in zip(weights(resumed), expected):
        np.testing.assert_array_equal(got, want)

    restarted, _ = interrupted_then_resumed(tmp_path / "other", resumable=False)
    assert any(not np.array_equal(g, w) for g, w in zip(weights(restarted), expected))


def test_a_save_that_dies_midway_leaves_the_previous_backup(tmp_path, monkeypatch):
    model, stream, _ = sinusoid_maml()
    backup = AtomicBackupAndRestore(tmp_path, delete_checkpoint=False)
    fit(model, stream, [backup])
    committed = backup.committed_state()
    assert committed == {"epoch": 4, "weights": "epoch-000004.weights.h5"}
    assert sorted(os.listdir(tmp_path)) == [committed["weights"], STATE]
    saved = weights(model)

    def dies_while_writing(filepath, overwrite=True):
        with open(filepath, "wb") as file:
            file.write(b"\x89HDF\r\n half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save_weights", dies_while_writing)
    with pytest.raises(KeyboardInterrupt):
        model.fit(stream, steps_per_epoch=3, epochs=5, verbose=0, callbacks=[backup])
    with open(tmp_path / f"{STATE}.tmp", "w") as file:
        file.write('{"epoch": 5, "wei')  # a state write cut short, never renamed
    assert backup.committed_state() == committed

    restored, _, _ = sinusoid_maml()
    callback = AtomicBackupAndRestore(tmp_path)
    callback.set_model(restored)
    callback.on_train_begin()
    assert sorted(os.listdir(tmp_path)) == [committed["weights"], STATE]  # debris removed
    assert restored._initial_epoch == 4
    assert int(callback.start_iteration) == 12
    assert len(weights(restored)) == len(saved)
    for got, want in zip(weights(restored), saved):
        np.testing.assert_array_equal(got, want)


def run_worker(out_dir, *args, kill_after=None, after_commit=True):
    """Runs the worker to completion, or SIGKILLs it `kill_after` seconds after
    its first backup commit (or after it started, with `after_commit=False`).
    Returns its exit code (−9 when killed)."""
    state = os.path.join(out_dir, "backup", STATE)
    before = _identity(state)
    process = subprocess.Popen([sys.executable, WORKER, str(out_dir), *args], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is not None:
        while after_commit and process.poll() is None and _identity(state) in (None, before):
            time.sleep(0.01)
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)  # does nothing if it has finished
    _, stderr = process.communicate(timeout=600)
    if process.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"worker failed ({process.returncode}):\n{stderr.decode()[-3000:]}")
    return process.returncode


def _identity(path):
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns


def final_weights(out_dir):
    with np.load(os.path.join(out_dir, "final.npz")) as arrays:
        return {name: arrays[name] for name in arrays.files}


def assert_same_weights(got, want):
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def kill_and_resume(tmp_path, kills, worker_args=()):
    """Runs an uninterrupted reference worker beside a worker that is killed
    in the backup of epoch 2, then by each of `kills` (`run_worker` keyword
    arguments), and restarted until it finishes.

    Returns:
      (kills survived, reference weights, resumed weights).
    """
    reference = subprocess.Popen([sys.executable, WORKER, str(tmp_path / "reference"),
                                  *worker_args], cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
    resumed = tmp_path / "resumed"
    codes = [run_worker(resumed, "--kill_in_save=2", *worker_args)]
    for kill in kills:
        if codes[-1] == 0:
            break
        codes.append(run_worker(resumed, *worker_args, **kill))
    while codes[-1] != 0:
        codes.append(run_worker(resumed, *worker_args))
    _, stderr = reference.communicate(timeout=600)
    assert reference.returncode == 0, stderr.decode()[-3000:]
    return codes.count(-signal.SIGKILL), final_weights(tmp_path / "reference"), \
        final_weights(resumed)


@pytest.mark.slow  # tests/test_cli_resume.py kills and resumes the same callback in the default suite
def test_sigkilled_process_resumes_bit_identical(tmp_path):
    kills, want, got = kill_and_resume(tmp_path, [dict(kill_after=random.uniform(0.0, 0.3))])
    assert kills == 2
    assert_same_weights(got, want)


@pytest.mark.slow
def test_many_random_sigkills(tmp_path):
    """Ten kills at random instants: after a backup commit (mid-epoch, or
    mid-save) or from the process start (import, tracing, restoring)."""
    kills = [dict(kill_after=random.uniform(0.0, 1.0)) if i % 2 else
             dict(kill_after=random.uniform(2.0, 10.0), after_commit=False) for i in range(10)]
    # Long enough (6,000 meta-iterations) that every kill lands before the run ends.
    survived, want, got = kill_and_resume(tmp_path, kills, ["--epochs=300", "--steps=20"])
    print(f"kills survived: {survived}")
    assert survived >= 8
    assert_same_weights(got, want)
