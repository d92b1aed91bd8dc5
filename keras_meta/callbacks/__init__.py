"""Callbacks for meta-training with `fit`.

Standard Keras callbacks (`ModelCheckpoint`, `BackupAndRestore`,
`EarlyStopping`, `TensorBoard`, `CSVLogger`, `TerminateOnNaN`) work with every
`MetaModel` as they are. These add what few-shot learning needs: put them
before the callbacks that read the logs (`TensorBoard`, `CSVLogger`,
`ModelCheckpoint`, `EarlyStopping`), which see the logs in list order.
`AtomicBackupAndRestore` is `BackupAndRestore` with crash-safe writes and
the meta-iteration to resume the episode stream at.
"""

from keras_meta.backup import AtomicBackupAndRestore

from keras_meta.callbacks.adaptation_plot import AdaptationPlot
from keras_meta.callbacks.few_shot_evaluation import FewShotEvaluation
from keras_meta.callbacks.task_throughput import TaskThroughput

__all__ = ["AdaptationPlot", "AtomicBackupAndRestore", "FewShotEvaluation", "TaskThroughput"]
