"""A wall-time budget for meta-training, the learning curve under it, and a
learning rate that decays over it."""

import math
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


class CosineLearningRate(keras.callbacks.Callback):
    """Decays the optimizer's learning rate from its value at the start of
    training to 0 along half a cosine, set before each meta-iteration:
    `initial · (1 + cos(π · f)) / 2`, `f` the fraction of the budget used,
    of the wall time `seconds` when given (a time budget), else of the
    `iterations` meta-iterations (read from the optimizer, so a resumed run
    continues the decay).

    Args:
      seconds: the wall-time budget, or None.
      iterations: the total meta-iterations (used when `seconds` is None).
      clock: a function returning seconds (`time.perf_counter`).
    """

    def __init__(self, seconds=None, iterations=None, clock=time.perf_counter):
        super().__init__()
        if not seconds and not iterations:
            raise ValueError("CosineLearningRate needs `seconds` or `iterations` > 0; "
                             f"received seconds={seconds!r}, iterations={iterations!r}.")
        self.budget_seconds = seconds
        self.iterations = iterations
        self.clock = clock

    def on_train_begin(self, logs=None):
        self.start = self.clock()
        self.initial = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.rate(self.fraction())

    def fraction(self):
        """The share of the budget used so far, in [0, 1]."""
        if self.budget_seconds:
            used = (self.clock() - self.start) / self.budget_seconds
        else:
            done = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            used = done / self.iterations
        return min(max(used, 0.0), 1.0)

    def rate(self, fraction):
        """The learning rate after `fraction` of the budget."""
        return self.initial * (1 + math.cos(math.pi * fraction)) / 2
