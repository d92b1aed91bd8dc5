"""Resuming a run that `keras.callbacks.BackupAndRestore` backed up."""

import json
import os

METADATA = "training_metadata.json"  # written by BackupAndRestore next to its weights


def completed_epochs(backup_dir):
    """Epochs of the run backed up in `backup_dir` (0 when there is none).

    `BackupAndRestore` restores the weights, the optimizer and the epoch, not
    the position in the data. Seeded episode streams are resumable with
    `skip`: `stream.skip(completed_epochs(backup_dir) * steps_per_epoch)`
    gives a resumed run the batches an uninterrupted one would see.
    """
    path = os.path.join(os.fspath(backup_dir), METADATA)
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as file:
        return int(json.load(file)["epoch"])
