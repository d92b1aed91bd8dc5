"""Batch norm over the global batch under `tf.distribute`.

A metric learner's embedding (or a baseline's body) sees the whole
meta-batch at once, so its batch norm's training statistics are those of
every example of every task. Under a strategy with several replicas each
replica holds only its share of the tasks; `global_batch_statistics`
makes batch norm all-reduce its statistics, so that a step on `R`
replicas equals a step on one device.
"""

import contextlib
import functools
import threading

import keras
import tensorflow as tf


# Per thread (MirroredStrategy traces each replica in its own thread): the
# ids of the batch-norm layers whose statistics are global right now.
_GLOBAL = threading.local()


@contextlib.contextmanager
def global_batch_statistics(layer):
    """Within this context, in a replica context of a strategy with more
    than one replica, every `keras.layers.BatchNormalization` in `layer`
    (itself included) computes its training mean and variance over the
    examples of all replicas, as one device computes them over the global
    batch (mean first, then the mean squared deviation). Elsewhere, and for
    masked inputs, batch norm is unchanged."""
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        yield
        return
    norms = [sub for sub in layer._flatten_layers(include_self=True)
             if isinstance(sub, keras.layers.BatchNormalization)]
    for norm in norms:
        if "_moments" not in vars(norm):
            norm._moments = functools.partial(_moments, norm)
    previous = getattr(_GLOBAL, "ids", frozenset())
    _GLOBAL.ids = previous | {id(norm) for norm in norms}
    try:
        yield
    finally:
        _GLOBAL.ids = previous


def _moments(norm, inputs, mask):
    """`(mean, variance)` `[channels]` of `inputs`: over the batch axes of
    every replica inside `global_batch_statistics`, else as Keras computes them."""
    if mask is not None or id(norm) not in getattr(_GLOBAL, "ids", ()):
        return type(norm)._moments(norm, inputs, mask)
    replica = tf.distribute.get_replica_context()
    axes = norm._reduction_axes
    total = tf.distribute.ReduceOp.SUM
    local_count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(inputs), axes)), inputs.dtype)
    count = replica.all_reduce(total, local_count)
    mean = replica.all_reduce(total, tf.reduce_sum(inputs, axis=axes, keepdims=True)) / count
    # As `tf.nn.moments`: the deviations' gradient through the mean is zero.
    deviations = tf.math.squared_difference(inputs, tf.stop_gradient(mean))
    variance = replica.all_reduce(
        total, tf.reduce_sum(deviations, axis=axes, keepdims=True)) / count
    return tf.squeeze(mean, axes), tf.squeeze(variance, axes)
