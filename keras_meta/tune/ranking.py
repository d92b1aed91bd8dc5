"""The leaderboard of a search: every trial's settings and its objective
with the 95% confidence interval, ranked, with the trials that the
validation tasks cannot tell apart from the best marked as ties; as a CSV
file and a plot of the objective against each hyperparameter."""

from __future__ import annotations

import csv
import dataclasses
import math
import os

import numpy as np
from matplotlib import ticker

from keras_meta import plot

TUNER_ENTRIES = "tuner/"  # Hyperband's bookkeeping values, not settings


@dataclasses.dataclass(frozen=True)
class Row:
    """One trial of a search.

    Attributes:
      trial_id: KerasTuner's id of the trial.
      status: `"COMPLETED"`, `"FAILED"`, ... (KerasTuner's `TrialStatus`).
      values: `{hyperparameter: value}` of the trial.
      objective: the objective at the trial's best epoch (NaN if none).
      ci: its 95% confidence half-width over the validation tasks.
      epoch: the best epoch (0-based, counted as `fit` counts them; None if none).
      rank: 1 for the best trial, None for trials without a result.
      verdict: `"best"`; `"tie"` when the difference to the best lies within
        the 95% confidence interval of a difference of two means
        (`1.96 · √(se_best² + se²)`, conservative since the trials share
        their validation tasks); `"worse"`; or `"no result"`.

    Example:

    ```python
    import keras_meta.tune
    row = keras_meta.tune.Row("3", "COMPLETED", {"inner_lr": 0.4}, objective=0.81, ci=0.02,
                              epoch=2, rank=1, verdict="best")
    ```
    """

    trial_id: str
    status: str
    values: dict
    objective: float
    ci: float
    epoch: int | None
    rank: int | None = None
    verdict: str = "no result"


def leaderboard(tuner):
    """The rows of `tuner`'s trials, best first, then the trials without a
    result (failed, still running).

    Args:
      tuner: a KerasTuner tuner whose objective is logged with a confidence
        half-width `<objective>_ci` (as `MetaHyperModel`'s validation does).

    Returns:
      A list of `Row`.

    Example:

    ```python
    import tempfile
    import keras_tuner, keras_meta.tune
    hypermodel = keras_meta.tune.MetaHyperModel("maml", "sinusoid", steps_per_epoch=2,
                                                val_tasks=10)
    tuner = keras_tuner.RandomSearch(hypermodel, objective=hypermodel.objective, max_trials=2,
                                     seed=1, directory=tempfile.mkdtemp())
    tuner.search(epochs=1, verbose=0)
    for row in keras_meta.tune.leaderboard(tuner):
        print(row.rank, row.verdict, f"{row.objective:.3f} ± {row.ci:.3f}", row.values)
    ```
    """
    objective = tuner.oracle.objective
    rows = [_row(trial, objective.name) for trial in tuner.oracle.trials.values()]
    scored = [row for row in rows if math.isfinite(row.objective)]
    sign = -1.0 if objective.direction == "max" else 1.0
    scored.sort(key=lambda row: (sign * row.objective, row.trial_id))
    unscored = sorted((row for row in rows if not math.isfinite(row.objective)),
                      key=lambda row: row.trial_id)
    if not scored:
        return unscored
    best = scored[0]
    ranked = [dataclasses.replace(row, rank=rank, verdict=_verdict(row, best, rank))
              for rank, row in enumerate(scored, start=1)]
    return ranked + unscored


def _verdict(row, best, rank):
    if rank == 1:
        return "best"
    tied = abs(row.objective - best.objective) <= math.hypot(row.ci, best.ci)
    return "tie" if tied else "worse"


def _row(trial, objective_name):
    values = {name: value for name, value in trial.hyperparameters.values.items()
              if not name.startswith(TUNER_ENTRIES)}
    observations = _observations(trial, objective_name)
    status = str(getattr(trial.status, "value", trial.status))
    if not observations:
        return Row(trial.trial_id, status, values, math.nan, math.nan, None)
    direction = trial.metrics.get_direction(objective_name)
    pick = max if direction == "max" else min
    step, value = pick(observations.items(), key=lambda item: item[1])
    ci = _observations(trial, objective_name + plot.CI_SUFFIX).get(step, math.nan)
    # KerasTuner counts a trial's epochs from its start; Hyperband's continued
    # trials start at their initial epoch.
    epoch = step + trial.hyperparameters.values.get("tuner/initial_epoch", 0)
    return Row(trial.trial_id, status, values, value, ci, epoch)


def _observations(trial, name):
    """`{epoch: value}` of metric `name` in `trial` (empty when not logged)."""
    if not trial.metrics.exists(name):
        return {}
    return {observation.step: float(np.mean(observation.value))
            for observation in trial.metrics.get_history(name)}


def write_csv(rows, path, objective_name):
    """Writes a leaderboard to a CSV file: rank, verdict, objective, its CI,
    best epoch, trial id, status, then one column per hyperparameter.

    Args:
      rows: the `leaderboard`'s rows.
      path: the file to write.
      objective_name: the objective's column name (`"val_accuracy"`).

    Example:

    ```python
    import os, tempfile
    import keras_meta.tune
    rows = [keras_meta.tune.Row("0", "COMPLETED", {"inner_lr": 0.4}, 0.81, 0.02, 2, 1, "best")]
    keras_meta.tune.write_csv(rows, os.path.join(tempfile.mkdtemp(), "board.csv"),
                              "val_accuracy")
    ```
    """
    names = sorted({name for row in rows for name in row.values})
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["rank", "verdict", objective_name, objective_name + plot.CI_SUFFIX,
                         "epoch", "trial_id", "status", *names])
        for row in rows:
            writer.writerow([row.rank, row.verdict, row.objective, row.ci, row.epoch,
                             row.trial_id, row.status, *(row.values.get(n, "") for n in names)])


def plot_against_hyperparameters(rows, path, objective_name, log_scale=()):
    """Writes to `path` a figure with one panel per hyperparameter: each
    trial's objective ± 95% CI against its value, the best trial in red.

    Args:
      rows: the `leaderboard`'s rows.
      path: where to write (format from the extension).
      objective_name: the y-axis label.
      log_scale: hyperparameters whose axis is logarithmic.

    Example:

    ```python
    import os, tempfile
    import keras_meta.tune
    Row = keras_meta.tune.Row
    rows = [Row("0", "COMPLETED", {"inner_lr": 0.4}, 0.81, 0.02, 2, 1, "best"),
            Row("1", "COMPLETED", {"inner_lr": 0.1}, 0.78, 0.02, 1, 2, "worse")]
    keras_meta.tune.plot_against_hyperparameters(
        rows, os.path.join(tempfile.mkdtemp(), "board.png"), "val_accuracy",
        log_scale=("inner_lr",))
    ```
    """
    scored = [row for row in rows if row.rank is not None]
    names = sorted({name for row in scored for name in row.values})
    columns = min(3, max(1, len(names)))
    panels = max(1, len(names))
    axes = plot.new_axes(4.0 * columns, 3.2 * math.ceil(panels / columns))
    figure = axes.figure
    figure.delaxes(axes)
    grid = figure.subplots(math.ceil(panels / columns), columns, squeeze=False).ravel()
    for ax, name in zip(grid, names):
        _panel(ax, name, [row for row in scored if name in row.values], objective_name,
               name in log_scale)
    for ax in grid[len(names):]:
        figure.delaxes(ax)
    figure.tight_layout()
    plot.save(grid[0], path)


def _panel(ax, name, rows, objective_name, log_scale):
    values = [row.values[name] for row in rows]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        positions = np.asarray(values, dtype=float)
    else:
        labels = sorted({str(v) for v in values})
        positions = np.asarray([labels.index(str(v)) for v in values], dtype=float)
        ax.set_xticks(range(len(labels)), labels)
    for position, row in zip(positions, rows):
        best = row.verdict == "best"
        ax.errorbar(position, row.objective, yerr=row.ci, fmt="o", capsize=3,
                    color="tab:red" if best else "tab:blue", zorder=3 if best else 2)
    if numeric and log_scale:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel(name)
    ax.set_ylabel(objective_name)
    ax.grid(alpha=0.3)
