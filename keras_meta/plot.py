"""Matplotlib figures for meta-learning runs: learning curves (from `History`
or a `CSVLogger` file), accuracy against inner steps, and a regression
task's fit along the adaptation.

Each function draws on `ax` (a new figure's axes when None) and returns the
axes; `save(ax, path)` writes the figure. No pyplot state is used, so these
work in scripts and on machines without a display.
"""

import csv
import math
import os

import numpy as np
from matplotlib.figure import Figure

from keras_meta import stats

CI_SUFFIX = "_ci"


def new_axes(width=6.0, height=4.0):
    """Axes of a new figure of `width` × `height` inches.

    The figure is a `matplotlib.figure.Figure` of its own, not one of pyplot's.

    Args:
      width: the figure's width in inches.
      height: the figure's height in inches.

    Returns:
      Matplotlib `Axes`.

    Example:

    ```python
    ax = km.plot.new_axes(width=4, height=3)
    ax.plot([0, 1], [1, 0])
    ```
    """
    return Figure(figsize=(width, height)).add_subplot()


def save(ax, path, dpi=100):
    """Writes the figure of `ax` to `path` (format from its extension).

    Creates the directory of `path` if it does not exist.

    Args:
      ax: Matplotlib `Axes`.
      path: the file to write, e.g. `"plots/curves.png"`.
      dpi: resolution in dots per inch.

    Example:

    ```python
    ax = km.plot.new_axes()
    ax.plot([0, 1], [1, 0])
    km.plot.save(ax, "plots/line.png")
    ```
    """
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    ax.figure.savefig(path, dpi=dpi, bbox_inches="tight")


def read_history(history):
    """The logged metrics of a training run, epoch by epoch.

    Args:
      history: a `keras.callbacks.History` (what `fit` returns), its
        `.history` dict, or the path of a `keras.callbacks.CSVLogger` file
        (`NA` cells become NaN).

    Returns:
      `{metric: [value per epoch]}`.

    Example:

    ```python
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    logger = keras.callbacks.CSVLogger("log.csv")
    model.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=2, callbacks=[logger], verbose=0)
    km.plot.read_history("log.csv")  # {"loss": [..., ...]}
    ```
    """
    if hasattr(history, "history"):
        return dict(history.history)
    if isinstance(history, dict):
        return dict(history)
    with open(history, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        raise ValueError(f"`history` file {os.fspath(history)!r} holds no epochs.")
    return {key: [_number(row[key]) for row in rows] for key in rows[0] if key != "epoch"}


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def default_metrics(logs):
    """The accuracy curves of `logs` if any, else the loss curves (not their
    `_ci` half-widths nor the per-step values).

    Args:
      logs: the metric names, e.g. the keys of `read_history`'s result.

    Returns:
      A list of metric names.

    Example:

    ```python
    km.plot.default_metrics(["loss", "val_accuracy", "val_accuracy_ci"])  # ["val_accuracy"]
    ```
    """
    curves = [key for key in logs if not key.endswith(CI_SUFFIX) and "_step_" not in key]
    accuracy = [key for key in curves if "accuracy" in key]
    return accuracy or [key for key in curves if "loss" in key]


def learning_curves(history, metrics=None, steps_per_epoch=None, ax=None):
    """Metrics against training time, with a band of ± the 95% CI where
    `{metric}_ci` is logged (as `km.callbacks.FewShotEvaluation` does).

    Args:
      history: see `read_history`.
      metrics: names to plot; default `default_metrics`.
      steps_per_epoch: if given, the x axis counts meta-iterations (epoch
        `e` ends at `e · steps_per_epoch`), else epochs.
      ax: axes to draw on; default `new_axes()`.

    Returns:
      The axes.

    Example:

    ```python
    history = {"val_accuracy": [0.5, 0.7, 0.8], "val_accuracy_ci": [0.05, 0.04, 0.03]}
    ax = km.plot.learning_curves(history, steps_per_epoch=100)
    km.plot.save(ax, "curves.png")
    ```
    """
    logs = read_history(history)
    metrics = default_metrics(logs) if metrics is None else list(metrics)
    unknown = [name for name in metrics if name not in logs]
    if unknown:
        raise ValueError(f"`metrics` {unknown} are not in the history; it has {sorted(logs)}.")
    ax = ax or new_axes()
    for name in metrics:
        values = np.asarray(logs[name], dtype=np.float64)
        epochs = np.arange(1, len(values) + 1) * (steps_per_epoch or 1)
        shown = ~np.isnan(values)
        (line,) = ax.plot(epochs[shown], values[shown], marker=".", label=name)
        if name + CI_SUFFIX in logs:
            half = np.asarray(logs[name + CI_SUFFIX], dtype=np.float64)[shown]
            ax.fill_between(epochs[shown], values[shown] - half, values[shown] + half,
                            color=line.get_color(), alpha=0.2)
    ax.set_xlabel("meta-iterations" if steps_per_epoch else "epoch")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def by_inner_step(per_step, label=None, ylabel="accuracy", ax=None):
    """Mean ± 95% CI over tasks against the number of inner steps.

    Args:
      per_step: `[N, steps + 1]` per-task values after 0..steps inner steps
        (`TaskResults.accuracy_per_step` or `.loss_per_step`), N ≥ 2.
      label: the legend's entry for this curve; no legend when None.
      ylabel: what the values are, for the y axis's label.
      ax: axes to draw on; default `new_axes()`.

    Returns:
      The axes.

    Example:

    ```python
    per_step = np.random.default_rng(0).uniform(0.2, 1.0, size=(100, 6))
    ax = km.plot.by_inner_step(per_step, label="MAML")
    ```
    """
    per_step = np.asarray(per_step, dtype=np.float64)
    if per_step.ndim != 2 or per_step.shape[0] < 2:
        raise ValueError(f"`per_step` must have shape [tasks >= 2, steps + 1]; "
                         f"received shape {per_step.shape}.")
    means, halves = np.array([stats.mean_confidence_interval(column) for column in per_step.T]).T
    ax = ax or new_axes()
    ax.errorbar(np.arange(per_step.shape[1]), means, yerr=halves, marker="o", capsize=3,
                label=label)
    ax.set_xlabel("inner steps")
    ax.set_ylabel(f"{ylabel} (mean ± 95% CI, {per_step.shape[0]} tasks)")
    ax.set_xticks(np.arange(per_step.shape[1]))
    if label is not None:
        ax.legend()
    ax.grid(alpha=0.3)
    return ax


def regression_fit(support_x, support_y, grid_x, predictions_per_step, steps=None,
                   query_x=None, query_y=None, ax=None):
    """One 1-D regression task: its support points and the model's curve
    after some inner steps.

    Args:
      support_x, support_y: `[S, 1]`.
      grid_x: `[G, 1]` inputs at which the curves are drawn.
      predictions_per_step: `[steps + 1, G, 1]` predictions at `grid_x` after
        0..steps inner steps.
      steps: which step counts to draw; default the first, second and last.
      query_x, query_y: optional `[Q, 1]` held-out points of the task.
      ax: axes to draw on; default `new_axes()`.

    Returns:
      The axes.

    Example:

    ```python
    grid = np.linspace(-5, 5, 50)[:, None]
    predictions = np.stack([np.sin(grid) * scale for scale in (0.0, 0.5, 1.0)])  # [3, 50, 1]
    support_x = np.array([[-2.0], [0.5], [3.0]])
    ax = km.plot.regression_fit(support_x, np.sin(support_x), grid, predictions)
    ```
    """
    predictions = np.asarray(predictions_per_step)
    grid = np.asarray(grid_x).reshape(-1)
    if predictions.ndim != 3 or predictions.shape[1] != grid.size:
        raise ValueError(f"`predictions_per_step` must have shape [steps + 1, {grid.size}, 1]; "
                         f"received shape {predictions.shape}.")
    last = predictions.shape[0] - 1
    steps = sorted({0, min(1, last), last}) if steps is None else list(steps)
    ax = ax or new_axes()
    order = np.argsort(grid)
    for step in steps:
        ax.plot(grid[order], predictions[step, order, 0], label=f"after {step} steps",
                linestyle="-" if step == last else "--")
    if query_x is not None:
        ax.plot(np.ravel(query_x), np.ravel(query_y), ".", color="grey", label="query points")
    ax.plot(np.ravel(support_x), np.ravel(support_y), "^", color="purple", label="support points")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize=8)
    return ax
