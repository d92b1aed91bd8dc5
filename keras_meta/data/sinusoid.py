"""The sinusoid regression family of the MAML paper (Finn et al., 2017, §5.1)."""

import math

import tensorflow as tf

from keras_meta import episode
from keras_meta import arguments
from keras_meta.data import stream


def sinusoid_episodes(shots=10, query_shots=10, meta_batch_size=25, seed=0,
                      amplitude_range=(0.1, 5.0), phase_range=(0.0, math.pi),
                      x_range=(-5.0, 5.0), start=0):
    """An infinite, seeded stream of sinusoid regression episodes.

    Each task is `y = A sin(x − φ)` with `A ~ U(amplitude_range)`,
    `φ ~ U(phase_range)` and inputs `x ~ U(x_range)`. Batch `i` is drawn
    from a counter-based generator keyed by `(seed, i)`, so the stream is
    reproducible, independent of parallelism, and resumable: `start=i` (or
    `skip(i)`) begins at batch `i`, and `start=backup.start_iteration`
    continues where a run restored by `backup`, a
    `km.callbacks.AtomicBackupAndRestore`, stopped.

    Args:
      shots: support points per task.
      query_shots: query points per task.
      meta_batch_size: tasks per dataset element.
      seed: int; the same seed gives the same episodes.
      amplitude_range: `(low, high)` of the amplitudes `A`.
      phase_range: `(low, high)` of the phases `φ`.
      x_range: `(low, high)` of the inputs `x`.
      start: index of the first batch, an int or a scalar integer variable.

    Returns:
      A `tf.data.Dataset` of `(inputs, query_y)` with `support_x`, `support_y`
      `[meta_batch_size, shots, 1]`, `query_x` and `query_y`
      `[meta_batch_size, query_shots, 1]`, all float32.

    Example:

    ```python
    train = km.data.sinusoid_episodes(shots=10, query_shots=10, meta_batch_size=25, seed=0)
    inputs, query_y = next(iter(train))
    inputs["support_x"].shape, query_y.shape  # (25, 10, 1), (25, 10, 1)
    ```
    """
    for name, value in (("shots", shots), ("query_shots", query_shots),
                        ("meta_batch_size", meta_batch_size)):
        arguments.check_size(name, value)
    for name, value in (("amplitude_range", amplitude_range), ("phase_range", phase_range),
                        ("x_range", x_range)):
        arguments.check_range(name, value)
    arguments.check_int("seed", seed)

    def batch(index):
        keys = tf.random.experimental.stateless_split(
            tf.stack([tf.constant(seed, tf.int64), index]), num=3)
        tasks = (meta_batch_size, 1, 1)
        amplitude = tf.random.stateless_uniform(tasks, keys[0], *amplitude_range)
        phase = tf.random.stateless_uniform(tasks, keys[1], *phase_range)
        x = tf.random.stateless_uniform((meta_batch_size, shots + query_shots, 1), keys[2], *x_range)
        y = amplitude * tf.sin(x - phase)
        inputs = {
            episode.SUPPORT_X: x[:, :shots],
            episode.SUPPORT_Y: y[:, :shots],
            episode.QUERY_X: x[:, shots:],
        }
        return inputs, y[:, shots:]

    return stream.counter_stream(batch, start)
