"""Meta-trains a keras_meta model and reports its few-shot test result.

    python -m keras_meta.train                       # MAML, packaged Omniglot minimal, short run
    python -m keras_meta.train --algorithm=protonet --ways=20
    python -m keras_meta.train --preset=maml_omniglot_5w1s   # the MAML paper's protocol
    python -m keras_meta.train --preset=maml_sinusoid --iterations=20000
    python -m keras_meta.train --preset=maml_mini_imagenet_5w1s --data_dir=~/tensorflow_datasets
    python -m keras_meta.train --preset=omniglot_minimal_one_shot   # 10 minutes, one-shot trials
    python -m keras_meta.train --dataset=cifar_fs --algorithm=protonet   # TFDS cifar100
    python -m keras_meta.train --algorithm=leo --global_clipnorm=1.0
    python -m keras_meta.train --dataset=sinusoid --algorithm=finetune --test_shots=5,20
    python -m keras_meta.train --strategy=mirrored             # every GPU (see --cpu_devices)
    python -m keras_meta.train --dataset=navigation_2d         # MAML-RL, a short run
    python -m keras_meta.train --preset=maml_half_cheetah_vel  # MAML-RL, the paper's protocol

Shows Keras's progress bar with tasks/s; every epoch (`--log_every`
meta-iterations) evaluates `--val_tasks` validation tasks, keeps the best
checkpoint and a crash-safe backup to resume from (re-run the same command
after an interruption: the run continues with the batches it would have
seen), and logs to TensorBoard and a CSV file. At the end it prints
the test accuracy (MSE for sinusoids) over `--test_tasks` new tasks as
mean ± 95% confidence interval, and writes into `--output_dir`:

    results.json          settings, training time, test figures, history (and
                          within-alphabet trials, learning curve: see below)
    model.keras           the final model (keras.saving.load_model)
    checkpoints/best.keras    the model with the best validation result
    saved_model/          SavedModel: serve(support_x, support_y, query_x)
    logs/                 TensorBoard: train/, validation/, test/
    history.csv           one row per epoch
    learning_curves.png, adaptation.png

Meta-RL datasets (navigation_2d, half_cheetah_vel, half_cheetah_dir) train
MAML-RL (`keras_meta.rl.MAMLRL`: --algorithm=maml, or fomaml for its
first-order variant) with a TRPO outer step; the progress bar shows the mean
return before (`return_0`) and after (`return_1`) adaptation, validation
runs on --val_tasks tasks (`val_return_k`, best checkpoint by the return
after --eval_inner_steps steps), and the test reports the return after
0..--eval_inner_steps adaptation steps on --test_tasks new tasks (no
SavedModel; adaptation.png plots return against adaptation steps).

On Omniglot, --within_alphabet_trials=N also reports the error on N of
Lake et al.'s 20-way within-alphabet one-shot trials; --time_budget stops
meta-training after that many seconds, and --curve_points=K evaluates the
weights of K evenly spaced times of it on those trials after training.

Flags left unset take the preset's value, else the dataset's default
(`keras_meta/cli/presets.py`); a flag that contradicts a preset is an error,
except --iterations, --time_budget and --within_alphabet_trials. `--helpfull`
lists every flag.
"""

import dataclasses
import os
import sys
import time

from absl import app, flags, logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_meta import callbacks as meta_callbacks  # noqa: E402
from keras_meta import evaluation  # noqa: E402
from keras_meta import stats as km_stats  # noqa: E402
from keras_meta.algorithms import protonet  # noqa: E402
from keras_meta.backup import AtomicBackupAndRestore  # noqa: E402
from keras_meta.cli import config as run_config  # noqa: E402
from keras_meta.cli import budget, models, presets, report, strategies, streams  # noqa: E402
from keras_meta.rl.objectives import ESTIMATORS  # noqa: E402

FLAGS = flags.FLAGS
_DEFAULT = "default: the preset's, else the dataset's"
_RUN = run_config.RUN_DEFAULTS

flags.DEFINE_enum("preset", None, list(presets.PRESETS),
                  "A published protocol; fixes the flags it sets (all but --iterations, "
                  "--time_budget and --within_alphabet_trials).")
flags.DEFINE_enum("algorithm", None, list(models.ALGORITHMS), f"What to meta-train ({_DEFAULT}: maml).")
flags.DEFINE_enum("dataset", None, list(presets.DATASETS),
                  "Episodes: the packaged Omniglot minimal (offline), TFDS Omniglot (downloads "
                  "once), the MAML sinusoid family, or a few-shot benchmark: mini_imagenet, "
                  "tiered_imagenet (raw files in <data_dir>/downloads/manual/<name>), cifar_fs, "
                  "fc100, cub (TFDS downloads their sources; README, Datasets) (default: "
                  "omniglot_minimal). Meta-RL (MAML-RL): navigation_2d, half_cheetah_vel, "
                  "half_cheetah_dir (Gymnasium + MuJoCo: pip install \"keras_meta[rl]\").")
flags.DEFINE_integer("ways", None, f"Classes per task ({_DEFAULT}: 5).", lower_bound=2)
flags.DEFINE_integer("train_ways", None, "Classes per training task, where they differ from "
                     "--ways (protonet, matching, relation; default: --ways).", lower_bound=2)
flags.DEFINE_integer("shots", None, f"Support examples per class ({_DEFAULT}).", lower_bound=1)
flags.DEFINE_integer("query_shots", None, f"Query examples per class ({_DEFAULT}).", lower_bound=1)
flags.DEFINE_integer("meta_batch_size", None, f"Tasks per meta-iteration ({_DEFAULT}).",
                     lower_bound=1)
flags.DEFINE_float("inner_lr", None, f"Inner SGD learning rate; Meta-SGD's initial rate "
                   f"({_DEFAULT}).", lower_bound=0.0)
flags.DEFINE_integer("inner_steps", None, f"Inner steps while meta-training ({_DEFAULT}).",
                     lower_bound=0)
flags.DEFINE_integer("eval_inner_steps", None, f"Inner steps on validation and test tasks "
                     f"({_DEFAULT}).", lower_bound=0)
flags.DEFINE_bool("first_order", None, "First-order meta-gradient (maml, meta_sgd, anil).")
flags.DEFINE_bool("recompute_inner_steps", _RUN["recompute_inner_steps"],
                  "Recompute each inner step in the backward pass instead of storing its "
                  "activations: memory nearly flat in --inner_steps, same meta-gradient, a "
                  "little slower (algorithms with a meta-gradient through the inner loop: "
                  + ", ".join(models.RECOMPUTABLE) + ").")
flags.DEFINE_float("learning_rate", None, f"Adam's outer learning rate ({_DEFAULT}: 1e-3).",
                   lower_bound=0.0)
flags.DEFINE_integer("trajectories", None, f"Meta-RL: trajectories per task and adaptation "
                     f"step ({_DEFAULT}: 20 for navigation, 10 for the cheetahs).",
                     lower_bound=1)
flags.DEFINE_integer("horizon", None, f"Meta-RL: steps per trajectory ({_DEFAULT}: 100 for "
                     "navigation, 200 for the cheetahs).", lower_bound=1)
flags.DEFINE_float("max_kl", None, f"Meta-RL: TRPO's trust region, the largest mean KL of a "
                   f"meta-iteration's step ({_DEFAULT}: 0.01).", lower_bound=0.0)
flags.DEFINE_enum("estimator", None, list(ESTIMATORS), f"Meta-RL: the inner step's surrogate, "
                  f"whose derivative the meta-gradient takes ({_DEFAULT}: dice, unbiased; lvc "
                  "and naive learned more on the cheetah at small budgets, see the README).")
flags.DEFINE_integer("iterations", None, f"Meta-iterations ({_DEFAULT}).", lower_bound=1)
flags.DEFINE_integer("log_every", None, "Meta-iterations per Keras epoch: validation, "
                     "checkpoint, backup and log cadence (default: a tenth of --iterations).",
                     lower_bound=1)
flags.DEFINE_integer("seed", _RUN["seed"], "Seed of weights and training tasks; test tasks use "
                     "seed + 1, validation tasks seed + 2.")
flags.DEFINE_string("output_dir", None, "Where everything is written (default: runs/<preset or "
                    "algorithm_dataset>).")
flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS's); mini- and "
                    "tiered-ImageNet's raw files go in <data_dir>/downloads/manual/<dataset>.")
flags.DEFINE_integer("test_tasks", _RUN["test_tasks"], "New tasks in the final test "
                     "(meta-RL default: 40).", lower_bound=2)
flags.DEFINE_integer("val_tasks", _RUN["val_tasks"], "Validation tasks evaluated each epoch "
                     "(0: none; then no best checkpoint; meta-RL default: 20 for navigation, "
                     "0 for the cheetahs).", lower_bound=0)
flags.DEFINE_enum("backbone", _RUN["backbone"], list(models.BACKBONES),
                  "Embedding network of protonet and matching: conv4 (--filters wide) or "
                  "resnet12 (64-160-320-640).")
flags.DEFINE_integer("filters", _RUN["filters"], "Channels of the conv4 backbone (image datasets; "
                     "the mini-ImageNet presets set 32).",
                     lower_bound=1)
flags.DEFINE_enum("distance", None, list(protonet.DISTANCES),
                  "ProtoNet's distance between query embeddings and prototypes (default: "
                  "squared_euclidean).")
flags.DEFINE_enum("learning_rate_schedule", _RUN["learning_rate_schedule"],
                  ["constant", "cosine"], "The outer learning rate over meta-training: "
                  "constant, or cosine (from --learning_rate down to 0 along half a cosine, over "
                  "--time_budget when set, else over --iterations).")
flags.DEFINE_float("global_clipnorm", None, "Clip each meta-gradient to this global norm "
                   "(default: no clipping).", lower_bound=0.0)
flags.DEFINE_list("test_shots", [], "Also test with these support sizes K, e.g. 5,10,20 "
                  "(results.json: test_by_shots).")
flags.DEFINE_enum("strategy", "default", list(strategies.STRATEGIES),
                  "tf.distribute: default (one device), mirrored (every GPU, else every logical "
                  "CPU device) or multi_worker (the cluster in TF_CONFIG; run the same command "
                  "on every worker). --meta_batch_size must be a multiple of the replicas.")
flags.DEFINE_integer("cpu_devices", None, "Split the CPU into this many logical devices, e.g. to "
                     "try --strategy=mirrored on a machine without GPUs.", lower_bound=1)
flags.DEFINE_enum("dtype_policy", _RUN["dtype_policy"],
                  ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras's global dtype policy: mixed_* computes the learner's layers in "
                  "float16/bfloat16 with float32 weights, inner updates and losses "
                  "(mixed_float16 with dynamic loss scaling; README, Mixed precision).")
flags.DEFINE_bool("export", _RUN["export"],
                  "Also write a SavedModel to <output_dir>/saved_model.")
flags.DEFINE_bool("export_raw_images", _RUN["export_raw_images"], "The SavedModel's serve "
                  "takes raw images (uint8 [T, N, H, W, C], any size, 1 or 3 channels, as the "
                  "PNGs decode) and preprocesses them as training did (image datasets).")
flags.DEFINE_bool("train_within_alphabet", None, "Omniglot: training episodes draw their "
                  "classes from one alphabet, support and queries from distinct drawers "
                  "(default: false).")
flags.DEFINE_integer("image_size", None, "Omniglot: side of the images the model sees, the "
                     "test episodes and the raw-image export's resizing (the PNGs are 105; "
                     "default: 28).", lower_bound=1)
flags.DEFINE_enum("augment", None, list(run_config.AUGMENTATIONS), "Omniglot: seeded "
                  "distortions of the support and query images of training episodes: none, or "
                  "characters (km.data.augment.characters(); default: none).")
flags.DEFINE_bool("learn_scale", None, "ProtoNet: learn the logits' scale (default: false).")
flags.DEFINE_integer("refinement_steps", None, "ProtoNet: soft k-means refinement steps of the "
                     "prototypes with the queries, in training and at test (default: 0).",
                     lower_bound=0)
flags.DEFINE_integer("eval_refinement_steps", None, "ProtoNet: refinement steps outside "
                     "training (default: --refinement_steps).", lower_bound=0)
flags.DEFINE_integer("within_alphabet_trials", None, "Omniglot: after training, also evaluate "
                     "this many of Lake et al.'s 20-way within-alphabet one-shot trials on the "
                     "test split (protonet, matching, relation; default: 0).", lower_bound=0)
flags.DEFINE_float("time_budget", None, "Stop meta-training after this many seconds of it "
                   "(--iterations is then a maximum; default: no budget).", lower_bound=0.0)
flags.DEFINE_integer("curve_points", None, "With --time_budget and --within_alphabet_trials: "
                     "keep the weights at this many evenly spaced times of training and, "
                     "after it, evaluate each on the trials (results.json: learning_curve; "
                     "default: 0).", lower_bound=0)
flags.DEFINE_enum("verbose", "1", ["0", "1", "2"],
                  "Keras verbosity: 1 progress bar, 2 one line per epoch, 0 silent.")


def parse_flags(argv):
    """absl's parsing, failing with one line that names the flag."""
    try:
        rest = FLAGS(argv)
    except flags.Error as error:
        fail(str(error).splitlines()[0])
    if len(rest) > 1:
        fail(f"unexpected arguments {rest[1:]} (flags are written --name=value)")
    return rest


def fail(message):
    print(f"keras_meta.train: error: {message}", file=sys.stderr)
    sys.exit(2)


def resolved_config():
    given = {name for name in FLAGS if FLAGS[name].present}
    try:
        config = run_config.resolve({name: FLAGS[name].value for name in FLAGS}, given)
    except run_config.UsageError as error:
        fail(str(error))
    if config.val_tasks == 1:
        fail("--val_tasks must be 0 or >= 2")
    return config


def training_callbacks(config, backup, resuming, clock):
    """Throughput, the time budget (`clock`, a `budget.TimeBudget`), the
    learning-rate schedule, validation, logs, checkpoints and the backup, in
    the order in which they must see each epoch's logs."""
    out = config.output_dir
    monitor, mode = ("val_accuracy", "max") if config.classification else ("val_loss", "min")
    if config.rl:  # validated by `fit` itself (`rl_validation`)
        monitor, mode = f"val_return_{config.eval_inner_steps}", "max"
    callbacks = [meta_callbacks.TaskThroughput(config.meta_batch_size), clock]
    if config.learning_rate_schedule == "cosine":
        callbacks.append(budget.CosineLearningRate(config.time_budget, config.iterations))
    if config.val_tasks:
        if not config.rl:
            callbacks.append(meta_callbacks.FewShotEvaluation(
                streams.episodes(config, "validation"), num_tasks=config.val_tasks,
                prefix="val"))
        callbacks.append(keras.callbacks.ModelCheckpoint(
            os.path.join(out, "checkpoints", "best.keras"), monitor=monitor, mode=mode,
            save_best_only=True))
    return callbacks + [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(os.path.join(out, "history.csv"), append=resuming),
        keras.callbacks.TensorBoard(os.path.join(out, "logs"), write_graph=False),
        backup,
    ]


def rl_validation(config, model):
    """`fit`'s validation arguments of a meta-RL run: one batch of
    `--val_tasks` validation tasks per epoch (`MAMLRL.test_step`: the
    return after 0..eval_inner_steps adaptation steps, `val_return_k`)."""
    if not config.rl or not config.val_tasks:
        return {}
    return dict(validation_data=streams.rl_tasks(config, model.family, "validation",
                                                 config.val_tasks),
                validation_steps=1)


def build(config, labelled):
    """The model of `config`; a missing optional dependency (Gymnasium for
    the cheetahs) fails with one line naming --dataset."""
    try:
        return models.build_model(config, num_classes=labelled and labelled[1])
    except ImportError as error:
        if not config.rl:
            raise
        fail(f"--dataset={config.dataset} needs Gymnasium and MuJoCo: {error}")


def rl_test(config, model, out, payload):
    """Tests a meta-RL model: the return after 0..eval_inner_steps
    adaptation steps on `config.test_tasks` new tasks; writes TensorBoard's
    test run and the figures into `payload`; returns the summary."""
    returns = model.adaptation_returns(streams.rl_test_tasks(config, model.family),
                                       steps=config.eval_inner_steps, seed=config.seed + 1)
    summary = report.rl_test_summary(config, returns)
    report.write_rl_test_summaries(os.path.join(out, "logs"), summary, returns,
                                   config.iterations)
    payload["figures"] = report.write_figures(out, config, os.path.join(out, "history.csv"),
                                              returns)
    return summary


def trials_error(config, model):
    """`{"error", "ci", "trials"}`: `model`'s error on the within-alphabet
    trials, mean and 95% half-width over `config.within_alphabet_trials`."""
    accuracies = evaluation.evaluate_tasks(model, streams.within_alphabet_trials(config),
                                           config.within_alphabet_trials).accuracy
    mean, half_width = km_stats.mean_confidence_interval(1.0 - accuracies)
    return {"error": float(mean), "ci": float(half_width),
            "trials": config.within_alphabet_trials}


def learning_curve(config, model, snapshots):
    """`[{"seconds", "iterations", "error", "ci", "trials"}]`: each snapshot's
    weights evaluated on the trials; `model` keeps its own weights."""
    final = model.get_weights()
    curve = []
    for snapshot in snapshots:
        model.set_weights(snapshot["weights"])
        curve.append({"seconds": snapshot["seconds"], "iterations": snapshot["iterations"],
                      **trials_error(config, model)})
    model.set_weights(final)
    return curve


def main(argv):
    del argv
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TFDS logs each dataset it opens at INFO
    config = resolved_config()
    strategy = strategies.create(FLAGS.strategy, FLAGS.cpu_devices)  # before other TF work
    replicas = strategy.num_replicas_in_sync
    if config.meta_batch_size % replicas:
        fail(f"--meta_batch_size={config.meta_batch_size} must be a multiple of the {replicas} "
             f"replicas of --strategy={FLAGS.strategy}")
    out = config.output_dir
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    backup = AtomicBackupAndRestore(os.path.join(out, "backup"))
    done = (backup.committed_state() or {"epoch": 0})["epoch"]
    if done:
        print(f"Resuming after epoch {done} of {config.epochs} from {backup.backup_dir}")
    labelled = streams.labelled(config)
    keras.mixed_precision.set_global_policy(config.dtype_policy)  # before any layer is made
    with strategy.scope():
        model = build(config, labelled)

    start = time.perf_counter()
    train = labelled[0] if labelled else streams.training(config, model)
    clock = budget.TimeBudget(config.time_budget, config.curve_points)
    history = model.fit(train, epochs=config.epochs,
                        steps_per_epoch=config.log_every, verbose=int(FLAGS.verbose),
                        callbacks=training_callbacks(config, backup, done > 0, clock),
                        **rl_validation(config, model))
    seconds = time.perf_counter() - start
    model.save(os.path.join(out, "model.keras"))
    if config.export:
        model.export(os.path.join(out, "saved_model"), verbose=False,
                     preprocess=streams.raw_image_preprocess(config))

    iterations = clock.iterations
    train_figures = {"iterations": config.iterations, "iterations_this_process": iterations,
                     "iterations_run": done * config.log_every + iterations,
                     "seconds": seconds, "training_seconds": clock.seconds,
                     "seconds_per_iteration": seconds / iterations,
                     "tasks_per_second": iterations * config.meta_batch_size / seconds}
    if config.rl:
        # Environment steps of meta-training: every task samples before and
        # after each of its inner steps (validation's excluded).
        steps = iterations * config.meta_batch_size * config.trajectories * config.horizon * (
            config.inner_steps + 1)
        train_figures.update(env_steps=steps, env_steps_per_second=steps / seconds)
        payload = {"config": config.as_dict(), "train": train_figures,
                   "history": history.history}
        summary = payload["test"] = rl_test(config, model, out, payload)
        report.write_json(os.path.join(out, "results.json"), payload)
        print(f"\n{iterations} meta-iterations in {seconds:.0f} s ({seconds / iterations:.3f} s "
              f"each, {steps / seconds:,.0f} environment steps/s)")
        print(report.per_step_line(config, summary))
        print(report.headline(config, summary))
        print(f"Results, checkpoints and TensorBoard logs: {out}")
        return

    with strategy.scope():
        tested = models.evaluation_model(config, model)
    # A task whose inner loop diverges is counted and left out, not fatal to the report.
    results = evaluation.evaluate_tasks(tested, streams.episodes(config, "test"), config.test_tasks,
                                        on_divergence="record")
    summary = report.test_summary(config, results)
    by_shots = []  # (config, summary) of each --test_shots
    for shots in config.test_shots:
        shots_config = dataclasses.replace(config, shots=shots)
        by_shots.append((shots_config, report.test_summary(shots_config, evaluation.evaluate_tasks(
            tested, streams.episodes(shots_config, "test"), config.test_tasks,
            on_divergence="record"))))
    payload = {
        "config": config.as_dict(),
        "strategy": {"name": FLAGS.strategy, "replicas": replicas},
        "train": train_figures,
        "test": summary,
        "test_by_shots": {str(c.shots): shots_summary for c, shots_summary in by_shots},
        "history": history.history,
    }
    if config.within_alphabet_trials:
        payload["within_alphabet"] = trials_error(config, tested)
        payload["learning_curve"] = learning_curve(config, tested, clock.snapshots)
    report.write_test_summaries(os.path.join(out, "logs"), summary, results, config.iterations)
    payload["figures"] = report.write_figures(out, config, os.path.join(out, "history.csv"),
                                              results)
    report.write_json(os.path.join(out, "results.json"), payload)
    print(f"\n{iterations} meta-iterations in {seconds:.0f} s "
          f"({seconds / iterations:.3f} s each, {payload['train']['tasks_per_second']:.1f} tasks/s)")
    for line_config, line_summary in [(config, summary), *by_shots]:
        for line in (report.per_step_line(line_config, line_summary),
                     report.headline(line_config, line_summary)):
            if line:
                print(line)
    if config.within_alphabet_trials:
        print(report.trials_line(payload["within_alphabet"]))
    print(f"Results, checkpoints and TensorBoard logs: {out}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
