"""Batch-norm statistics that are exact to second order, and global under
`tf.distribute`.

Keras on TensorFlow computes a batch's variance with `tf.nn.moments`, which
stops the gradient through the mean inside the squared deviations. First
derivatives are unaffected (the deviations sum to zero), but derivatives of
those derivatives lose the mean's terms, so a second-order meta-gradient
through batch norm (MAML's) would be wrong: for a convolution's bias
followed by batch norm, which cannot change the loss, it is not even zero.
`exact_statistics` makes a layer's batch norms compute their moments
without the stop; the inner loop's learners use it.

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

from keras_meta import keras_internals


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
    masked inputs, the statistics are those of the replica's own batch."""
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        yield
        return
    norms = exact_statistics(layer)
    previous = getattr(_GLOBAL, "ids", frozenset())
    _GLOBAL.ids = previous | {id(norm) for norm in norms}
    try:
        yield
    finally:
        _GLOBAL.ids = previous


def exact_statistics(layer):
    """Makes every `keras.layers.BatchNormalization` in `layer` (itself
    included) compute its training mean and variance with exact derivatives
    of every order: the same values as Keras, the mean first, then the mean
    squared deviation from it. Masked inputs and `synchronized=True` layers
    keep Keras's computation. Returns the batch-norm layers."""
    norms = [sub for sub in keras_internals.sublayers(layer)
             if isinstance(sub, keras.layers.BatchNormalization)]
    for norm in norms:
        keras_internals.replace_moments(norm, functools.partial(_moments, norm))
    return norms


def _moments(norm, inputs, mask):
    """`(mean, variance)` `[channels]` of `inputs` over the batch axes: of
    every replica inside `global_batch_statistics`, else of this batch."""
    if mask is not None or norm.synchronized:
        return keras_internals.keras_moments(norm, inputs, mask)
    axes = keras_internals.reduction_axes(norm)
    values = inputs
    if inputs.dtype in (tf.float16, tf.bfloat16):  # as Keras: statistics in float32
        values = tf.cast(inputs, tf.float32)
    if id(norm) in getattr(_GLOBAL, "ids", ()):
        replica = tf.distribute.get_replica_context()
        total = tf.distribute.ReduceOp.SUM
        local_count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(values), axes)), values.dtype)
        count = replica.all_reduce(total, local_count)
        mean = replica.all_reduce(total, tf.reduce_sum(values, axis=axes, keepdims=True)) / count
        deviations = tf.square(values - mean)
        variance = replica.all_reduce(
            total, tf.reduce_sum(deviations, axis=axes, keepdims=True)) / count
    else:
        mean = tf.reduce_mean(values, axis=axes, keepdims=True)
        variance = tf.reduce_mean(tf.square(values - mean), axis=axes, keepdims=True)
    mean, variance = tf.squeeze(mean, axes), tf.squeeze(variance, axes)
    return tf.cast(mean, inputs.dtype), tf.cast(variance, inputs.dtype)
