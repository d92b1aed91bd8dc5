"""Searches the meta-hyperparameters of an algorithm with KerasTuner.

    python -m keras_meta.tune --algorithm=maml --dataset=omniglot_minimal --trials=12
    python -m keras_meta.tune --algorithm=protonet --tuner=hyperband --epochs=9
    python -m keras_meta.tune --algorithm=maml --dataset=sinusoid --tuner=bayesian

Each trial meta-trains the model `python -m keras_meta.train` builds for
the trial's settings (`keras_meta.tune.spaces`) for `--epochs` epochs of
`--steps_per_epoch` meta-iterations, validating on the same `--val_tasks`
tasks after each epoch (the objective: validation accuracy, or MSE for
sinusoids). Hyperband gives trials 1..`--epochs` epochs. Then the search's
best model (its best epoch) and the default settings, trained with the same
budget, are tested on `--test_tasks` new tasks. Written to `--output_dir`:

    leaderboard.csv    every trial: rank, objective ± 95% CI, tie with the best?, settings
    leaderboard.png    the objective against each hyperparameter
    summary.json       the search, the best settings, test results of best and default
    search/, default/  KerasTuner's projects (re-running the command resumes them)
"""

import json
import os
import sys
import time

from absl import app, flags, logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_tuner  # noqa: E402

from keras_meta import evaluation  # noqa: E402
from keras_meta.cli import models, presets, streams  # noqa: E402
from keras_meta.tune import hypermodel as hypermodels  # noqa: E402
from keras_meta.tune import ranking  # noqa: E402

FLAGS = flags.FLAGS
TUNERS = ("random", "bayesian", "hyperband")
LOG_SCALE = ("learning_rate", "inner_lr")

flags.DEFINE_enum("algorithm", "maml", list(models.ALGORITHMS), "What to tune.")
flags.DEFINE_enum("dataset", presets.DATASETS[0],
                  [name for name in presets.DATASETS if name not in presets.RL_DATASETS],
                  "Episodes, as for python -m keras_meta.train.")
flags.DEFINE_enum("tuner", "random", list(TUNERS), "KerasTuner's RandomSearch, "
                  "BayesianOptimization or Hyperband.")
flags.DEFINE_integer("trials", 10, "Trials of random and Bayesian search (Hyperband's "
                     "number follows from --epochs).", lower_bound=1)
flags.DEFINE_integer("epochs", 3, "Epochs of each trial (Hyperband: of its longest trials).",
                     lower_bound=1)
flags.DEFINE_integer("steps_per_epoch", 100, "Meta-iterations per epoch.", lower_bound=1)
flags.DEFINE_integer("val_tasks", 100, "Validation tasks after each epoch.", lower_bound=2)
flags.DEFINE_integer("test_tasks", 600, "Test tasks for the best and the default settings.",
                     lower_bound=2)
flags.DEFINE_integer("seed", 0, "Seed of the weights and tasks (as for keras_meta.train); the "
                     "tuner's seed is seed + 1 (KerasTuner reads 0 as 'unseeded').")
flags.DEFINE_integer("ways", None, "Classes per task (default: the dataset's).", lower_bound=2)
flags.DEFINE_integer("shots", None, "Support examples per class.", lower_bound=1)
flags.DEFINE_integer("query_shots", None, "Query examples per class.", lower_bound=1)
flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS's).")
flags.DEFINE_bool("default", True, "Also train and test the default settings with the "
                  "search's largest budget, for comparison.")
flags.DEFINE_string("output_dir", None, "Where everything is written (default: "
                    "runs/tune_<algorithm>_<dataset>).")
flags.DEFINE_bool("overwrite", False, "Start the search afresh instead of resuming it.")


def new_tuner(kind, hypermodel, directory, project, trials, hyperparameters=None,
              tune_new_entries=True):
    """A KerasTuner tuner of `kind` (one of `TUNERS`) over `hypermodel`."""
    common = dict(objective=hypermodel.objective, seed=FLAGS.seed + 1, directory=directory,
                  project_name=project, overwrite=FLAGS.overwrite,
                  hyperparameters=hyperparameters, tune_new_entries=tune_new_entries)
    if kind == "hyperband":
        return keras_tuner.Hyperband(hypermodel, max_epochs=FLAGS.epochs, **common)
    oracle = keras_tuner.BayesianOptimization if kind == "bayesian" else keras_tuner.RandomSearch
    return oracle(hypermodel, max_trials=trials, **common)


def default_hyperparameters(hypermodel):
    """Every searched setting fixed at its default (the CLI's value)."""
    declared = keras_tuner.HyperParameters()
    hypermodel.config(declared)
    fixed = keras_tuner.HyperParameters()
    for name, value in declared.values.items():
        fixed.Fixed(name, value)
    return fixed


def test_best(hypermodel, tuner):
    """`(settings, test summary)` of `tuner`'s best model on the test tasks."""
    hp = tuner.get_best_hyperparameters(1)[0]
    config = hypermodel.config(hp)
    model = models.evaluation_model(config, tuner.get_best_models(1)[0])
    results = evaluation.evaluate_tasks(model, streams.episodes(config, "test"),
                                        FLAGS.test_tasks, on_divergence="record")
    settings = {k: v for k, v in hp.values.items() if not k.startswith(ranking.TUNER_ENTRIES)}
    return settings, results.summary("test")


def main(argv):
    del argv
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    fixed = {name: FLAGS[name].value for name in ("ways", "shots", "query_shots", "data_dir")
             if FLAGS[name].value is not None}
    try:
        hypermodel = hypermodels.MetaHyperModel(
            FLAGS.algorithm, FLAGS.dataset, steps_per_epoch=FLAGS.steps_per_epoch,
            val_tasks=FLAGS.val_tasks, seed=FLAGS.seed, **fixed)
    except ValueError as error:
        print(f"keras_meta.tune: error: {error}", file=sys.stderr)
        sys.exit(2)
    out = FLAGS.output_dir or os.path.join("runs", f"tune_{hypermodel.name}")
    objective = hypermodel.objective.name

    start = time.perf_counter()
    tuner = new_tuner(FLAGS.tuner, hypermodel, out, "search", FLAGS.trials)
    tuner.search(epochs=FLAGS.epochs, verbose=0)
    seconds = time.perf_counter() - start
    rows = ranking.leaderboard(tuner)
    ranking.write_csv(rows, os.path.join(out, "leaderboard.csv"), objective)
    ranking.plot_against_hyperparameters(rows, os.path.join(out, "leaderboard.png"), objective,
                                        log_scale=LOG_SCALE)
    best_settings, best_test = test_best(hypermodel, tuner)
    summary = {"algorithm": FLAGS.algorithm, "dataset": FLAGS.dataset, "tuner": FLAGS.tuner,
               "trials": len(rows), "completed": sum(row.rank is not None for row in rows),
               "epochs": FLAGS.epochs, "steps_per_epoch": FLAGS.steps_per_epoch,
               "val_tasks": FLAGS.val_tasks, "seed": FLAGS.seed, "search_seconds": seconds,
               "best": {"settings": best_settings, objective: rows[0].objective,
                        objective + "_ci": rows[0].ci, "test": best_test},
               "ties_with_best": sum(row.verdict == "tie" for row in rows)}
    if FLAGS.default:
        baseline = new_tuner("random", hypermodel, out, "default", 1,
                             default_hyperparameters(hypermodel), tune_new_entries=False)
        baseline.search(epochs=FLAGS.epochs, verbose=0)
        default_row = ranking.leaderboard(baseline)[0]
        default_settings, default_test = test_best(hypermodel, baseline)
        summary["default"] = {"settings": default_settings, objective: default_row.objective,
                              objective + "_ci": default_row.ci, "test": default_test}
    with open(os.path.join(out, "summary.json"), "w") as file:
        json.dump(summary, file, indent=2)
    print_summary(summary, objective)
    print(f"Leaderboard, plot and summary: {out}")


def print_summary(summary, objective):
    """Prints the search's outcome: trials, best and default settings with
    their validation and test results."""
    metric = "test_accuracy" if objective == "val_accuracy" else "test_loss"
    print(f"{summary['completed']} of {summary['trials']} trials completed "
          f"({summary['tuner']}, {summary['epochs']} epochs of {summary['steps_per_epoch']} "
          f"meta-iterations at most) in {summary['search_seconds']:.0f} s; "
          f"{summary['ties_with_best']} within the 95% CI of the best.")
    for name in ("best", "default"):
        if name in summary:
            entry = summary[name]
            print(f"{name}: {entry['settings']}\n  {objective} {entry[objective]:.4f} ± "
                  f"{entry[objective + '_ci']:.4f}, {metric} {entry['test'][metric]:.4f} ± "
                  f"{entry['test'][metric + '_ci']:.4f} (95% CI)")


if __name__ == "__main__":
    app.run(main)
