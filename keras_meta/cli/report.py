"""What a run leaves behind: the printed result, `results.json`, the test
summaries in TensorBoard and the figures."""

import json
import os

import tensorflow as tf

from keras_meta import evaluation, plot


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


def headline(config, summary):
    """One line: the test metric, mean ± 95% CI, and what it was measured on."""
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
    writer = tf.summary.create_file_writer(os.path.join(log_dir, "test"))
    with writer.as_default():
        for key, value in summary.items():
            if key.startswith("test_") and "_step_" not in key:
                tf.summary.scalar(key[len("test_"):], value, step=step)
        for name in ("accuracy", "loss"):
            per_step = getattr(results, f"{name}_per_step")
            if per_step is not None:
                for k, value in enumerate(per_step.mean(axis=0)):
                    tf.summary.scalar(f"{name}_by_inner_step", value, step=k)
    writer.close()


def write_figures(output_dir, config, history_csv, results):
    """`learning_curves.png` (from the CSV log) and, for gradient-based
    models, `adaptation.png` (test metric against inner steps). Returns
    the paths written."""
    ax = plot.learning_curves(history_csv, steps_per_epoch=config.log_every)
    ax.set_title(f"{config.algorithm} on {config.dataset}")
    paths = [os.path.join(output_dir, "learning_curves.png")]
    plot.save(ax, paths[0])
    if config.per_step:
        per_step, name = ((results.accuracy_per_step, "accuracy") if config.classification
                          else (results.loss_per_step, "MSE"))
        ax = plot.by_inner_step(per_step, ylabel=f"test {name}")
        ax.set_title(f"{config.algorithm}: adaptation on {len(per_step)} new tasks")
        paths.append(os.path.join(output_dir, "adaptation.png"))
        plot.save(ax, paths[1])
    return paths
