"""What a run leaves behind: the printed result, `results.json`, the test
summaries in TensorBoard and the figures."""

import json
import os

import numpy as np
import tensorflow as tf

from keras_meta import evaluation, plot, stats


def test_summary(config, results):
    """The test results as stored in `results.json` (fractions, not percents).

    Args:
      config: the run's `Config`.
      results: `keras_meta.evaluation.TaskResults` on the test tasks.
    """
    summary = {"split": "test", "tasks": len(results.loss), "seed": config.seed + 1,
               "shots": config.shots,
               "inner_steps": config.eval_inner_steps if config.per_step else None}
    summary.update(results.summary("test"))
    for name in ("accuracy", "loss"):
        per_step = getattr(results, f"{name}_per_step")
        if config.per_step and per_step is not None:
            for step, values in enumerate(per_step.T):
                summary[f"test_{name}_step_{step}_ci"] = evaluation.finite_mean_confidence_interval(
                    values, results.finite(step))[1]
    summary["metric"] = "test_accuracy" if config.classification else "test_loss"
    return summary


def rl_test_summary(config, returns):
    """Meta-RL test results as stored in `results.json`: the mean return
    over tasks after each of 0..eval_inner_steps adaptation steps, its 95%
    CI half-width (`keras_meta.stats`), and each task's returns.

    Args:
      config: the run's `Config`.
      returns: `[tasks, eval_inner_steps + 1]` mean returns
        (`MAMLRL.adaptation_returns`).
    """
    returns = np.asarray(returns, np.float64)
    summary = {"split": "test", "tasks": len(returns), "seed": config.seed + 1,
               "inner_steps": config.eval_inner_steps}
    for step, values in enumerate(returns.T):
        summary[f"test_return_step_{step}"], summary[f"test_return_step_{step}_ci"] = \
            stats.mean_confidence_interval(values)
    last = returns.shape[1] - 1
    summary["test_return"] = summary[f"test_return_step_{last}"]
    summary["test_return_ci"] = summary[f"test_return_step_{last}_ci"]
    summary["returns_per_task"] = returns.tolist()
    summary["metric"] = "test_return"
    return summary


def trials_line(trials):
    """One line: the error on Lake et al.'s within-alphabet one-shot trials
    (`trials`: `{"error", "ci", "trials"}`), mean ± 95% CI."""
    return (f"20-way within-alphabet one-shot error over {trials['trials']} trials of the test "
            f"split: {100 * trials['error']:.2f}% ± {100 * trials['ci']:.2f}% (95% CI)")


def headline(config, summary):
    """One line: the test metric, mean ± 95% CI, and what it was measured on."""
    if config.rl:
        return (f"{config.algorithm} test return on {summary['tasks']} new {config.dataset} "
                f"tasks (seed {summary['seed']}, {summary['inner_steps']} adaptation steps of "
                f"{config.trajectories} trajectories): {summary['test_return']:.2f} ± "
                f"{summary['test_return_ci']:.2f} (95% CI)")
    if config.classification:
        task = f"{config.ways}-way {config.shots}-shot accuracy"
        value = f"{100 * summary['test_accuracy']:.2f}% ± {100 * summary['test_accuracy_ci']:.2f}%"
        source = f"tasks of the {config.dataset} test split"
    else:
        task = f"{config.shots}-shot MSE"
        value = f"{summary['test_loss']:.3f} ± {summary['test_loss_ci']:.3f}"
        source = "sinusoid tasks"
    steps = f", {summary['inner_steps']} inner steps" if config.per_step else ""
    diverged = summary.get("test_diverged_tasks", 0)
    left_out = f"; the inner loop diverged on {diverged} tasks, left out" if diverged else ""
    return (f"{config.algorithm} test {task} on {summary['tasks']} new {source} "
            f"(seed {summary['seed']}{steps}): {value} (95% CI{left_out})")


def per_step_line(config, summary):
    """The adaptation curve in one line (gradient-based models), else None."""
    if config.rl:
        values = [summary[f"test_return_step_{k}"] for k in range(config.eval_inner_steps + 1)]
        return (f"test return after 0..{len(values) - 1} adaptation steps: "
                + " ".join(f"{v:.2f}" for v in values))
    if not config.per_step:
        return None
    name = "accuracy" if config.classification else "loss"
    values = [summary[f"test_{name}_step_{k}"] for k in range(config.eval_inner_steps + 1)]
    shown = [f"{100 * v:.1f}%" if config.classification else f"{v:.3f}" for v in values]
    return f"test {'accuracy' if config.classification else 'MSE'} after 0..{len(values) - 1} " \
           f"inner steps: {' '.join(shown)}"


def write_json(path, payload):
    with open(path, "w", encoding="utf-8") as file:
        json.dump(payload, file, indent=2)
        file.write("\n")


def write_test_summaries(log_dir, summary, results, step):
    """TensorBoard run `test`: each test figure at meta-iteration `step`, and
    the adaptation curve (`accuracy_by_inner_step` / `loss_by_inner_step`,
    indexed by the number of inner steps)."""
    curves = {name: getattr(results, f"{name}_per_step") for name in ("accuracy", "loss")}
    _write_test_scalars(log_dir, summary, curves, step)


def write_rl_test_summaries(log_dir, summary, returns, step):
    """TensorBoard run `test` of a meta-RL run: the final test return and its
    CI at meta-iteration `step`, and `return_by_inner_step` (the mean test
    return against the number of adaptation steps)."""
    _write_test_scalars(log_dir, summary, {"return": np.asarray(returns)}, step)


def _write_test_scalars(log_dir, summary, curves, step):
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "test"))
    with writer.as_default():
        for key, value in summary.items():
            if key.startswith("test_") and "_step_" not in key:
                tf.summary.scalar(key[len("test_"):], value, step=step)
        for name, per_step in curves.items():
            if per_step is not None:
                for k, value in enumerate(per_step.mean(axis=0)):
                    tf.summary.scalar(f"{name}_by_inner_step", value, step=k)
    writer.close()


def write_figures(output_dir, config, history_csv, results):
    """`learning_curves.png` (from the CSV log) and, for gradient-based
    models, `adaptation.png` (test metric against inner steps; meta-RL: the
    test return against adaptation steps, `results` being the returns
    `[tasks, steps + 1]`). Returns the paths written."""
    metrics = None
    if config.rl:  # returns before and after adaptation, in training and validation
        logged = plot.read_history(history_csv)
        metrics = [f"{prefix}return_{k}" for prefix in ("", "val_")
                   for k in range(config.eval_inner_steps + 1)
                   if f"{prefix}return_{k}" in logged]
    ax = plot.learning_curves(history_csv, metrics=metrics, steps_per_epoch=config.log_every)
    ax.set_title(f"{config.algorithm} on {config.dataset}")
    paths = [os.path.join(output_dir, "learning_curves.png")]
    plot.save(ax, paths[0])
    if config.per_step or config.rl:
        if config.rl:  # `results`: the test returns [tasks, steps + 1]
            per_step, name = np.asarray(results), "return"
        else:
            per_step, name = ((results.accuracy_per_step, "accuracy") if config.classification
                              else (results.loss_per_step, "MSE"))
        ax = plot.by_inner_step(per_step, ylabel=f"test {name}")
        if config.rl:
            ax.set_xlabel("adaptation steps (policy-gradient steps of "
                          f"{config.trajectories} trajectories)")
        ax.set_title(f"{config.algorithm}: adaptation on {len(per_step)} new tasks")
        paths.append(os.path.join(output_dir, "adaptation.png"))
        plot.save(ax, paths[1])
    return paths
