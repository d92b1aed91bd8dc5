"""Crash-safe backups for resuming `fit` after the process was killed.

`AtomicBackupAndRestore` does what `keras.callbacks.BackupAndRestore` does
(back up the model and its optimizer at the end of every epoch; at the start
of `fit`, restore them and continue from the epoch after the backup) with
writes that a kill at any instant cannot corrupt:

1. the weights go to a file of their own, `epoch-<N>.weights.h5`, flushed
   to disk;
2. `state.json`, naming that file and the epoch, is written to a temporary
   file, flushed, and renamed over the previous one (`os.replace`, atomic
   on POSIX and Windows): this rename is the commit;
3. only then are older weight files removed.

A kill before the commit leaves the previous backup intact; a kill after it
leaves the new one. Files that no committed state names (a half-written
weight file) are removed when `fit` starts.

To resume bit-identically, the training stream must also continue where
the backup stopped: start it at the callback's `start_iteration`, which
`fit` sets to the model's (restored) meta-iteration before it reads any
data:

    backup = km.callbacks.AtomicBackupAndRestore("run/backup")
    train = km.data.sinusoid_episodes(seed=0, start=backup.start_iteration)
    model.fit(train, steps_per_epoch=100, epochs=50, callbacks=[backup])
"""

import json
import os
import shutil

import keras
import tensorflow as tf

from keras_meta import keras_internals

STATE = "state.json"


class AtomicBackupAndRestore(keras.callbacks.Callback):
    """Backs up the training state at each epoch end; restores it at the start of `fit`.

    Args:
      backup_dir: directory for the backup, used by nothing else.
      delete_checkpoint: remove the backup when `fit` completes (as Keras's
        `BackupAndRestore`).

    Attributes:
      start_iteration: scalar int64 variable, the model's meta-iteration
        (`optimizer.iterations`) when `fit` began, after the restore: the
        `start` of a resumable episode stream (see `km.data.sinusoid_episodes`).

    Backups happen at epoch ends only: Keras resumes a run at the start of
    an epoch, so choose `steps_per_epoch` for the backup cadence.

    Example:

    ```python
    model = km.MAML(km.learners.mlp(), inner_steps=1)
    model.compile(optimizer="adam", loss="mse")
    backup = km.callbacks.AtomicBackupAndRestore("backup")
    # After a crash, the same lines continue from the last epoch's backup.
    train = km.data.sinusoid_episodes(start=backup.start_iteration)
    model.fit(train, steps_per_epoch=2, epochs=1, callbacks=[backup])
    ```
    """

    def __init__(self, backup_dir, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"`backup_dir` must be a directory path; received {backup_dir!r}.")
        self.backup_dir = os.fspath(backup_dir)
        self.delete_checkpoint = delete_checkpoint
        self.start_iteration = tf.Variable(0, dtype=tf.int64, trainable=False)

    @property
    def state_path(self):
        return os.path.join(self.backup_dir, STATE)

    def committed_state(self):
        """The last committed `{"epoch": int, "weights": file name}`, or None."""
        if not os.path.exists(self.state_path):
            return None
        with open(self.state_path, encoding="utf-8") as file:
            return json.load(file)

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError(
                "AtomicBackupAndRestore needs a built model: call it on an episode (or build "
                "it) before `fit`.")
        state = self.committed_state()
        self._remove_uncommitted(state)
        optimizer = self.model.optimizer
        if state is not None:
            if optimizer is not None and not optimizer.built:
                optimizer.build(self.model.trainable_variables)
            self.model.load_weights(os.path.join(self.backup_dir, state["weights"]))
            keras_internals.set_initial_epoch(self.model, state["epoch"])
        # (read as NumPy: `int()` fails on a variable mirrored by tf.distribute)
        self.start_iteration.assign(
            0 if optimizer is None else int(keras.ops.convert_to_numpy(optimizer.iterations)))

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        weights = f"epoch-{epoch + 1:06d}.weights.h5"
        path = os.path.join(self.backup_dir, weights)
        self.model.save_weights(path, overwrite=True)
        _flush_to_disk(path)
        _write_atomically(self.state_path, json.dumps({"epoch": epoch + 1, "weights": weights}))
        self._remove_uncommitted({"weights": weights})

    def on_train_end(self, logs=None):
        keras_internals.set_initial_epoch(self.model, None)
        if self.delete_checkpoint and os.path.isdir(self.backup_dir):
            if os.path.exists(self.state_path):
                os.remove(self.state_path)  # uncommits first: a kill mid-removal leaves no backup
            shutil.rmtree(self.backup_dir)

    def _remove_uncommitted(self, state):
        if not os.path.isdir(self.backup_dir):
            return
        keep = {STATE} | ({state["weights"]} if state else set())
        for name in os.listdir(self.backup_dir):
            if name not in keep:
                os.remove(os.path.join(self.backup_dir, name))


def _flush_to_disk(path):
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _write_atomically(path, text):
    """Replaces the file at `path` by one holding `text`, in one atomic rename."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    if os.name == "posix":  # makes the rename itself durable
        directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
