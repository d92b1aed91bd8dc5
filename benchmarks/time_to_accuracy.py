"""How long until the model is good enough? Seconds of training until the
validation accuracy first reaches a target, keras_meta against a plain
PyTorch per-task loop.

The jobs, models, optimiser, episodes and weight seeds are those of
`benchmarks/parity_jobs.py` (the README's main job, second-order MAML,
and ProtoNet on the CLI's defaults; both sides read the same episodes from
`km.data.omniglot_episodes`). Every `--check_every` meta-iterations both
sides test on the same `--validation_tasks` 5-way 1-shot tasks of the validation
split (seed 2) and stop once the mean accuracy reaches the job's target (80%
for MAML, 90% for ProtoNet). The clock counts training only, tracing
included, validation excluded. Every run is a process of its own, the two
implementations alternating.

    python -m benchmarks.time_to_accuracy                           # both jobs, seeds 0-2
    python -m benchmarks.time_to_accuracy --jobs=protonet --seeds=0 --results=runs.json
"""

import json
import os
import time

from absl import app, flags

from benchmarks import parity_jobs as parity

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS
flags.DEFINE_list("jobs", ["maml", "protonet"], "Jobs to run: maml, protonet.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Weight seeds, one run each per implementation.")
flags.DEFINE_list("implementations", ["keras_meta", "pytorch"], "keras_meta and/or pytorch.")
flags.DEFINE_float("maml_target", 0.80, "Validation accuracy MAML has to reach.")
flags.DEFINE_float("protonet_target", 0.90, "Validation accuracy ProtoNet has to reach.")
flags.DEFINE_integer("check_every", 50, "Meta-iterations between validations.")
flags.DEFINE_integer("validation_tasks", 200, "Validation tasks of each check.")
flags.DEFINE_integer("max_iterations", 5000, "A run that has not reached its target by "
                     "then stops.")
flags.DEFINE_string("results", None, "Also write every run's result to this JSON file.")
flags.DEFINE_string("cell", None, "Internal: run one cell, as 'job:implementation:seed'.")

VALIDATION_SEED = 2


def validation_stream():
    """The validation tasks every check tests on (the same ones each time)."""
    import keras_meta as km

    return km.data.omniglot_episodes(
        "validation", ways=parity.WAYS, shots=parity.SHOTS, query_shots=parity.QUERY_SHOTS,
        meta_batch_size=parity.TEST_BATCH, seed=VALIDATION_SEED)


def target(job):
    return FLAGS.maml_target if job == "maml" else FLAGS.protonet_target


class Stopwatch:
    """Training seconds with the validations taken out, and the checks made:
    `check(iteration, validate)` runs `validate()` off the clock, records
    `{iteration, seconds, accuracy}` and says whether the target is reached."""

    def __init__(self, goal):
        self.goal = goal
        self.start = time.perf_counter()
        self.excluded = 0.0
        self.curve = []

    def check(self, iteration, validate):
        paused = time.perf_counter()
        accuracy = float(validate())
        self.curve.append({"iteration": iteration,
                           "seconds": paused - self.start - self.excluded,
                           "accuracy": accuracy})
        self.excluded += time.perf_counter() - paused
        return accuracy >= self.goal


def keras_run(job, seed):
    """keras_meta's `fit` with a callback that validates every `check_every`
    meta-iterations and stops at the target → the stopwatch's curve."""
    import keras

    import keras_meta as km

    train, _ = parity.streams()
    validation = validation_stream()
    model = parity.keras_model(job, seed)

    class Checks(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.watch = Stopwatch(target(job))

        def on_train_batch_end(self, batch, logs=None):
            iteration = batch + 1
            if iteration % FLAGS.check_every == 0 and self.watch.check(
                    iteration, lambda: km.evaluation.evaluate_tasks(
                        model, validation, FLAGS.validation_tasks).accuracy.mean()):
                model.stop_training = True

    checks = Checks()
    model.fit(train, steps_per_epoch=FLAGS.max_iterations, epochs=1, verbose=0,
              callbacks=[checks])
    return checks.watch.curve


def torch_run(job, seed):
    """The PyTorch loop with the same checks → the stopwatch's curve."""
    train, _ = parity.streams()
    validation = validation_stream()
    net, params, optimizer = parity.torch_model(job, seed)
    watch = Stopwatch(target(job))
    batches = parity.torch_batches(train.take(FLAGS.max_iterations))
    for iteration, batch in enumerate(batches, start=1):
        parity.torch_train_step(job, net, params, optimizer, batch)
        if iteration % FLAGS.check_every == 0 and watch.check(
                iteration, lambda: parity.torch_accuracies(
                    job, net, params, validation, FLAGS.validation_tasks).mean()):
            break
    return watch.curve


def first_reached(curve, goal):
    """The first check of `curve` at or above `goal`, or None."""
    return next((point for point in curve if point["accuracy"] >= goal), None)


def run_cell(cell):
    job, implementation, seed = cell.split(":")
    curve = (keras_run if implementation == "keras_meta" else torch_run)(job, int(seed))
    reached = first_reached(curve, target(job))
    print(json.dumps({"job": job, "implementation": implementation, "seed": int(seed),
                      "target": target(job), "reached": reached, "curve": curve}))


def measure(job, implementation, seed):
    """One run in a process of its own → its result dict (or `{"error": ...}`)."""
    passed = [f"--{name}={getattr(FLAGS, name)}" for name in (
        "maml_target", "protonet_target", "check_every", "validation_tasks", "max_iterations")]
    return parity.run_cell_process("benchmarks.time_to_accuracy",
                                   f"{job}:{implementation}:{seed}", passed)


def cell_text(run):
    if "error" in run:
        return f"failed: {run['error']}"
    if run["reached"] is None:
        last = run["curve"][-1]
        return (f"not reached ({last['accuracy']:.1%} after {last['iteration']:,} it, "
                f"{last['seconds']:.0f} s)")
    return f"{run['reached']['seconds']:.0f} s ({run['reached']['iteration']:,} it)"


def row(job, implementation, runs):
    seconds = sorted(r["reached"]["seconds"] for r in runs
                     if "error" not in r and r["reached"] is not None)
    median = f"{seconds[len(seconds) // 2]:.0f} s" if len(seconds) == len(runs) else "—"
    return (f"| {job} ({target(job):.0%}) | {implementation} | "
            + " | ".join(cell_text(r) for r in runs) + f" | {median} |")


def main(argv):
    del argv
    if FLAGS.cell:
        run_cell(FLAGS.cell)
        return
    print(f"Training seconds until the mean accuracy on {FLAGS.validation_tasks} validation tasks "
          f"(seed {VALIDATION_SEED}, checked every {FLAGS.check_every} meta-iterations) "
          f"first reaches the target; at most {FLAGS.max_iterations:,} meta-iterations:\n")
    parity.compare(FLAGS.jobs, FLAGS.seeds, FLAGS.implementations, measure, row,
                   ["job (target)", "median"], FLAGS.results)


if __name__ == "__main__":
    app.run(main)
