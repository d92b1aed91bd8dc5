"""A wall-time budget for meta-training and the learning curve under it."""

import time

import keras


class TimeBudget(keras.callbacks.Callback):
    """Stops `fit` once `seconds` of training have passed (checked after each
    batch) and keeps copies of the model's weights at evenly spaced times.

    With `points` K > 0, a snapshot is taken when the training time first
    reaches each of `seconds · k / K` for k = 1..K−1, and one when training
    ends (whatever stopped it), so the last snapshot is the final model.

    Attributes:
      iterations: batches trained in this `fit`.
      seconds: wall time of training, from `on_train_begin`.
      snapshots: `[{"seconds", "iterations", "weights"}]` in time order.
    """

    def __init__(self, seconds=None, points=0):
        super().__init__()
        self.budget = seconds
        self.points = points
        self.iterations = 0
        self.seconds = 0.0
        self.snapshots = []

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.iterations += 1
        self.seconds = time.perf_counter() - self.start
        if not self.budget:
            return
        due = len(self.snapshots) + 1
        if due < self.points and self.seconds >= self.budget * due / self.points:
            self.snapshot()
        if self.seconds >= self.budget:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.points:
            self.snapshot()

    def snapshot(self):
        """Keeps a copy of the weights with the time and iterations so far."""
        self.snapshots.append(dict(seconds=self.seconds, iterations=self.iterations,
                                   weights=self.model.get_weights()))
