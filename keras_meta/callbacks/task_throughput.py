"""`TaskThroughput`: tasks per second in the progress bar and the logs."""

import time

import keras

from keras_meta.arguments import check_int

KEY = "tasks/s"


class TaskThroughput(keras.callbacks.Callback):
    """Adds `tasks/s`, the tasks meta-trained per second since the epoch
    began, to the batch logs (shown by Keras's progress bar) and to the
    epoch logs (`History`, `TensorBoard`, `CSVLogger`).

    Args:
      tasks_per_batch: tasks per meta-batch (`meta_batch_size`).

    Example:

    ```python
    model = km.MAML(km.learners.mlp(), inner_steps=1)
    model.compile(optimizer="adam", loss="mse")
    train = km.data.sinusoid_episodes(meta_batch_size=25)
    history = model.fit(train, steps_per_epoch=2, epochs=1,
                        callbacks=[km.callbacks.TaskThroughput(tasks_per_batch=25)])
    history.history["tasks/s"]
    ```
    """

    def __init__(self, tasks_per_batch):
        super().__init__()
        check_int("tasks_per_batch", tasks_per_batch, minimum=1)
        self.tasks_per_batch = tasks_per_batch
        self._start = None
        self._rate = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._rate = (batch + 1) * self.tasks_per_batch / (time.perf_counter() - self._start)
        if logs is not None:
            logs[KEY] = self._rate

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._rate is not None:
            logs[KEY] = self._rate
