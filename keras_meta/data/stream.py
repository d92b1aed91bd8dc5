"""Counter-based streams: batch `i` is a pure function of `i`, so a stream
can start anywhere, in particular where a restored model stopped.

`start` is an int, or a scalar integer variable read when iteration
begins. `fit` begins iterating after its callbacks' `on_train_begin`, where
`keras_meta.backup.AtomicBackupAndRestore` restores the model and sets its
`start_iteration` variable to the model's meta-iteration: a stream started
at that variable gives a resumed run the batches an uninterrupted one would
see. `model.optimizer.iterations` works too for models trained by
`MetaModel.train_step`, which advances it only after reading its batch;
under any other train step the first update may advance it before the
stream has read it.

Under `tf.distribute` every worker builds the same stream (same seed), and
`fit` distributes it with `experimental_distribute_dataset`: the stream
reads no files, so the default auto-shard policy falls back to `DATA`, and
worker `w` of `W` receives the `w`-th `1/W` of the tasks of each global
batch (`tests/test_distribute.py`). Every worker samples the whole batch
and keeps its share, so workers never see the same tasks and a run stays
reproducible.

Every stream turns tf.data's autotuning off (`without_autotune`). Its model
thread sleeps between optimisation passes for up to a minute, and deleting
an iterator waits for that thread to wake. `fit` and `evaluate` delete their
iterator when they return, and they stalled there for 10–23 s after a
600-iteration MAML run (about one run in two). The streams gather from
images held in memory: a parallel call per core keeps them ahead of every
training step (`benchmarks/episodes.py`).
"""

import keras
import tensorflow as tf

from keras_meta import arguments


def counter_stream(batch, start=0):
    """The `tf.data.Dataset` `batch(start), batch(start + 1), ...`.

    Args:
      batch: `index` (scalar int64 tensor) → one dataset element.
      start: index of the first batch: an int >= 0, or a scalar integer
        variable (`keras.Variable` or `tf.Variable`) read when iteration
        begins, such as `AtomicBackupAndRestore(...).start_iteration`.

    Returns:
      An infinite dataset, mapped in parallel (a call per core), deterministic,
      prefetched, without autotuning.
    """
    return without_autotune(counter(start)
                            .map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                            .prefetch(tf.data.AUTOTUNE))


def counter(start):
    """int64 indices `start, start + 1, ...`; `start` is an int >= 0 or a
    scalar integer variable read when iteration begins (a resumed run's
    meta-iteration)."""
    if isinstance(start, (keras.Variable, tf.Variable)):
        if not tf.as_dtype(start.dtype).is_integer or tuple(start.shape) != ():
            raise ValueError(f"`start` must be a scalar integer variable; received {start!r}.")
        # flat_map builds the counter when iteration begins, reading `start` then.
        return tf.data.Dataset.from_tensors(0).flat_map(
            lambda _: tf.data.Dataset.counter(start=tf.cast(tf.convert_to_tensor(start), tf.int64)))
    arguments.check_int("start", start, minimum=0)
    return tf.data.Dataset.counter(start=start)


def without_autotune(dataset):
    """`dataset` with tf.data's autotuning off: `AUTOTUNE` parallelism means a
    call per core and prefetch buffers grow while the consumer waits, with no
    model thread for the iterator's deletion to wait on."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
