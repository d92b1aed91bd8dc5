"""Throughput of the Omniglot episode pipeline next to what MAML consumes.

For 5-way 1-shot 15-query (meta-batch 32) and 20-way 5-shot 5-query
(meta-batch 16) on the offline `omniglot_minimal` train split (rotations on),
prints the tasks per second the pipeline produces, the tasks per second one
MAML meta-iteration consumes (conv4, the MAML paper's inner settings, second
order) and their ratio, which must be at least 10; and the pipelines'
resident memory. The MAML step is timed on a fixed in-memory batch of
`--maml_tasks` tasks: the tasks of a meta-batch run one after another, so
tasks per second barely depend on the meta-batch size, while memory grows
with it (20-way 5-step second-order MAML holds about 1 GB per task on CPU).

    python benchmarks/episodes.py
"""

import os
import time

from absl import app, flags, logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import psutil  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_meta as km  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("batches", 200, "Pipeline batches timed per setting (after 10 warm-up).")
flags.DEFINE_integer("train_steps", 5, "MAML meta-iterations timed per setting (after 2 warm-up).")
flags.DEFINE_integer("maml_tasks", 4, "Tasks in the batch the MAML step is timed on.")
flags.DEFINE_string("data_dir", None, "TFDS data directory (TFDS's default when unset).")

SETTINGS = (  # (ways, shots, query_shots, meta_batch_size, inner_lr, inner_steps)
    (5, 1, 15, 32, 0.4, 1),
    (20, 5, 5, 16, 0.1, 5),
)


def resident_mib():
    return psutil.Process().memory_info().rss / 2**20


def pipeline_tasks_per_second(stream, meta_batch_size):
    iterator = iter(stream)
    for _ in range(10):
        next(iterator)
    start = time.perf_counter()
    for _ in range(FLAGS.batches):
        next(iterator)
    return FLAGS.batches * meta_batch_size / (time.perf_counter() - start)


def maml_tasks_per_second(batch, ways, inner_lr, inner_steps):
    inputs, query_y = tf.nest.map_structure(lambda t: t[:FLAGS.maml_tasks], batch)
    model = km.MAML(km.learners.conv4(ways), inner_lr=inner_lr, inner_steps=inner_steps)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for _ in range(2):
        model.train_on_batch(inputs, query_y)
    start = time.perf_counter()
    for _ in range(FLAGS.train_steps):
        model.train_on_batch(inputs, query_y)
    return FLAGS.train_steps * len(query_y) / (time.perf_counter() - start)


def main(_):
    logging.set_verbosity(logging.WARNING)  # TFDS logs every dataset it reads at INFO
    tf.constant(0.0) + 1.0  # start the TensorFlow runtime before measuring memory
    baseline = resident_mib()
    streams, produced = {}, {}
    for ways, shots, query_shots, meta_batch_size, _, _ in SETTINGS:
        streams[ways] = km.data.omniglot_episodes(
            "train", ways=ways, shots=shots, query_shots=query_shots,
            meta_batch_size=meta_batch_size, data_dir=FLAGS.data_dir)
        produced[ways] = pipeline_tasks_per_second(streams[ways], meta_batch_size)
    after = resident_mib()
    print(f"pipelines: {len(SETTINGS)} omniglot_minimal train streams (each caching its own "
          f"images), resident memory +{after - baseline:.0f} MiB "
          f"({baseline:.0f} → {after:.0f} MiB)")
    print(f"{'setting':<28}{'pipeline tasks/s':>18}{'MAML step tasks/s':>19}{'ratio':>9}")
    for ways, shots, query_shots, meta_batch_size, inner_lr, inner_steps in SETTINGS:
        batch = next(iter(streams[ways]))
        consumed = maml_tasks_per_second(batch, ways, inner_lr, inner_steps)
        name = f"{ways}-way {shots}-shot {query_shots}-query T={meta_batch_size}"
        ratio = produced[ways] / consumed
        verdict = "ok" if ratio >= 10 else "TOO SLOW: the pipeline must be >= 10x the step"
        print(f"{name:<28}{produced[ways]:>18.0f}{consumed:>19.1f}{ratio:>8.0f}×  {verdict}")


if __name__ == "__main__":
    app.run(main)
