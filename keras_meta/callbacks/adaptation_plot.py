"""`AdaptationPlot`: a PNG of the adaptation at epoch ends."""

import os

import keras
import numpy as np

from keras_meta import episode, evaluation, plot
from keras_meta.arguments import check_int

GRID_POINTS = 200


class AdaptationPlot(keras.callbacks.Callback):
    """Every `every_n_epochs` epochs, writes
    `{directory}/adaptation_epoch_{epoch:04d}.png` (epochs counted from 1)
    for a gradient-based model (one with inner steps):

    - classification: query accuracy against inner steps, mean ± 95% CI over
      the first `num_tasks` tasks of `dataset`;
    - 1-D regression (e.g. sinusoids): the first task of `dataset`, its
      support and query points and the model's curve after 0, 1 and `steps`
      inner steps.

    Args:
      dataset: episode batches `(inputs, query_y)`.
      directory: where the PNGs go.
      every_n_epochs: plotting frequency.
      num_tasks: tasks averaged in the accuracy plot.
      inner_steps: inner steps to plot (default: `eval_inner_steps`).

    Attributes:
      paths: the files written so far.

    Example:

    ```python
    model = km.MAML(km.learners.mlp(), inner_steps=1)
    model.compile(optimizer="adam", loss="mse")
    test = km.data.sinusoid_episodes(meta_batch_size=1, seed=1)
    plot = km.callbacks.AdaptationPlot(test, "plots", inner_steps=3)
    model.fit(km.data.sinusoid_episodes(), steps_per_epoch=1, epochs=1, callbacks=[plot])
    plot.paths  # ["plots/adaptation_epoch_0001.png"]
    ```
    """

    def __init__(self, dataset, directory, every_n_epochs=1, num_tasks=100, inner_steps=None):
        super().__init__()
        check_int("every_n_epochs", every_n_epochs, minimum=1)
        check_int("num_tasks", num_tasks, minimum=2)
        if inner_steps is not None:
            check_int("inner_steps", inner_steps, minimum=0)
        self.dataset = dataset
        self.directory = os.fspath(directory)
        self.every_n_epochs = every_n_epochs
        self.num_tasks = num_tasks
        self.inner_steps = inner_steps
        self.paths = []
        self._evaluator = None
        self._functions = {}

    def set_model(self, model):
        if not evaluation.is_gradient_based(model):
            raise ValueError(
                f"AdaptationPlot plots inner steps: it needs a gradient-based model "
                f"(km.MAML and its subclasses); received {type(model).__name__}.")
        super().set_model(model)
        self._evaluator = evaluation.TaskEvaluator(model, self.inner_steps)

    @property
    def steps(self):
        return self.model.eval_inner_steps if self.inner_steps is None else self.inner_steps

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        inputs, query_y = next(iter(self.dataset))
        if np.asarray(inputs[episode.SUPPORT_Y]).dtype.kind in "iu":
            ax = self.plot_accuracy()
        else:
            ax = self.plot_regression(inputs, query_y)
        ax.set_title(f"{type(self.model).__name__}, epoch {epoch + 1}")
        path = os.path.join(self.directory, f"adaptation_epoch_{epoch + 1:04d}.png")
        plot.save(ax, path)
        self.paths.append(path)

    def plot_accuracy(self, ax=None):
        """Accuracy against inner steps on the first `num_tasks` tasks."""
        results = self._evaluator(self.dataset, self.num_tasks)
        return plot.by_inner_step(results.accuracy_per_step, ax=ax)

    def plot_regression(self, inputs, query_y, ax=None):
        """The fit of the first task of `inputs` (NumPy), 1-D features only."""
        task = {key: np.asarray(value)[:1] for key, value in inputs.items()}
        if task[episode.SUPPORT_X].shape[2:] != (1,):
            raise ValueError("AdaptationPlot draws regression tasks with one input feature; "
                             f"`support_x` has features {task[episode.SUPPORT_X].shape[2:]}.")
        seen = np.concatenate([task[episode.SUPPORT_X], task[episode.QUERY_X]], axis=1)
        grid = np.linspace(seen.min(), seen.max(), GRID_POINTS, dtype=seen.dtype)
        if self.steps not in self._functions:
            self._functions[self.steps] = evaluation.predictions_per_step_function(
                self.model, self.steps)
        curves = self._functions[self.steps]({**task, episode.QUERY_X: grid.reshape(1, -1, 1)})
        return plot.regression_fit(
            task[episode.SUPPORT_X][0], task[episode.SUPPORT_Y][0], grid.reshape(-1, 1),
            np.asarray(curves)[0], query_x=task[episode.QUERY_X][0],
            query_y=np.asarray(query_y)[0], ax=ax)
