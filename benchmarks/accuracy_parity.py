"""Learns keras_meta as much as a plain PyTorch loop at the same budget?

Runs two jobs, `maml` (the README's main job) and `protonet` (the CLI's
ProtoNet defaults) as `benchmarks/parity_jobs.py` builds them, side by side
in keras_meta and in a plain PyTorch per-task loop (optional: the PyTorch
column is left out when torch is not installed), for `--iterations`
meta-iterations over several weight seeds, and prints each run's test
accuracy (mean ± 95% CI over the test tasks), the mean over seeds and the
training time.

Both sides read the same episodes from `km.data.omniglot_episodes` (train
seed 0, test seed 1; the PyTorch loop converts each batch to tensors);
only the initial weights' seed changes between runs. For each seed the
implementations run one after the other, so that both see the same load on
the machine. Training time is the meta-training loop
alone (`fit`, the PyTorch loop) with its tracing, without the test. Every
run is a process of its own.

    python -m benchmarks.accuracy_parity                          # both jobs, seeds 0-2
    python -m benchmarks.accuracy_parity --jobs=maml --seeds=0,1,2,3,4
    python -m benchmarks.accuracy_parity --keras_initial_weights=pytorch  # paired
"""

import json
import os
import time

from absl import app, flags

from benchmarks.parity_jobs import (TEST_SEED, TRAIN_SEED, compare, keras_model,
                                    run_cell_process, streams, torch_accuracies,
                                    torch_batches, torch_model, torch_train_step)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS
flags.DEFINE_list("jobs", ["maml", "protonet"], "Jobs to run: maml, protonet.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Weight seeds, one run each per implementation.")
flags.DEFINE_list("implementations", ["keras_meta", "pytorch"], "keras_meta and/or pytorch.")
flags.DEFINE_integer("iterations", 600, "Meta-iterations of each run.")
flags.DEFINE_integer("test_tasks", 600, "Test tasks of each run.")
flags.DEFINE_enum("keras_initial_weights", "keras_meta", ["keras_meta", "pytorch"],
                  "keras_meta's starting point: its learners' own initialisation, or a "
                  "copy of the PyTorch network's initial weights of the same seed (a "
                  "paired comparison of the training steps alone).")
flags.DEFINE_string("results", None, "Also write every run's result to this JSON file.")
flags.DEFINE_string("cell", None, "Internal: run one cell, as 'job:implementation:seed'.")


def keras_run(job, seed):
    """Meta-trains and tests the keras_meta model of `job` → `(accuracies [N], seconds)`."""
    import keras_meta as km

    train, test = streams()
    model = keras_model(job, seed, FLAGS.keras_initial_weights)
    start = time.perf_counter()
    model.fit(train, steps_per_epoch=FLAGS.iterations, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    results = km.evaluation.evaluate_tasks(model, test, FLAGS.test_tasks)
    return results.accuracy, seconds


def torch_run(job, seed):
    """The same job as a plain PyTorch per-task loop → `(accuracies [N], seconds)`."""
    train, test = streams()
    net, params, optimizer = torch_model(job, seed)
    start = time.perf_counter()
    for batch in torch_batches(train.take(FLAGS.iterations)):
        torch_train_step(job, net, params, optimizer, batch)
    seconds = time.perf_counter() - start
    return torch_accuracies(job, net, params, test, FLAGS.test_tasks), seconds


def run_cell(cell):
    job, implementation, seed = cell.split(":")
    run = keras_run if implementation == "keras_meta" else torch_run
    accuracies, seconds = run(job, int(seed))
    import keras_meta as km

    mean, ci = km.stats.mean_confidence_interval(accuracies)
    print(json.dumps({"job": job, "implementation": implementation, "seed": int(seed),
                      "accuracy": mean, "ci": ci, "seconds": seconds}))


def measure(job, implementation, seed):
    """One run in a process of its own → its result dict (or `{"error": ...}`)."""
    return run_cell_process("benchmarks.accuracy_parity", f"{job}:{implementation}:{seed}", [
        f"--iterations={FLAGS.iterations}", f"--test_tasks={FLAGS.test_tasks}",
        f"--keras_initial_weights={FLAGS.keras_initial_weights}"])


def row(job, implementation, runs):
    cells = [f"{r['accuracy']:.2%} ± {r['ci']:.2%}" if "error" not in r
             else f"failed: {r['error']}" for r in runs]
    done = [r for r in runs if "error" not in r]
    mean = (f"**{sum(r['accuracy'] for r in done) / len(done):.2%}**" if done else "—")
    times = (f"{min(r['seconds'] for r in done):.0f}–{max(r['seconds'] for r in done):.0f} s"
             if done else "—")
    return f"| {job} | {implementation} | " + " | ".join(cells) + f" | {mean} | {times} |"


def main(argv):
    del argv
    if FLAGS.cell:
        run_cell(FLAGS.cell)
        return
    print(f"Test accuracy on {FLAGS.test_tasks} tasks (test seed {TEST_SEED}) after "
          f"{FLAGS.iterations} meta-iterations (train seed {TRAIN_SEED}), per weight seed; "
          "training time of the fastest and slowest run:\n")
    compare(FLAGS.jobs, FLAGS.seeds, FLAGS.implementations, measure, row,
            ["job", "mean", "training time"], FLAGS.results)


if __name__ == "__main__":
    app.run(main)
