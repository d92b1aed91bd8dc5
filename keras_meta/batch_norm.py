"""Batch norm that is fused, exact to every order of derivative, and
global under `tf.distribute`.

Keras on TensorFlow computes a batch's variance with `tf.nn.moments`, which
stops the gradient through the mean inside the squared deviations. First
derivatives are unaffected (the deviations sum to zero), but derivatives of
those derivatives lose the mean's terms, so a second-order meta-gradient
through batch norm (MAML's) would be wrong: for a convolution's bias
followed by batch norm, which cannot change the loss, it is not even zero.
TensorFlow's fused kernel has the same stop in its second derivative.
Unfused, the exact computation is about ten element-wise passes over the
activations per layer, forward and backward.

`exact_batch_norm` makes a layer's batch norms run `normalize` in training
mode: TensorFlow's fused kernels for the forward pass (`FusedBatchNormV3`)
and the backward pass (`FusedBatchNormGradV3`), and for the derivatives of
that backward pass the closed-form gradient written as differentiable ops,
so every order is exact. Every `MetaModel`
applies it to its learner.

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

from keras_meta import keras_internals, xla


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
    norms = exact_batch_norm(layer)
    previous = getattr(_GLOBAL, "ids", frozenset())
    _GLOBAL.ids = previous | {id(norm) for norm in norms}
    try:
        yield
    finally:
        _GLOBAL.ids = previous


def exact_batch_norm(layer):
    """Makes every `keras.layers.BatchNormalization` in `layer` (itself
    included) compute its training mode with `normalize` (fused, exact at
    every order) where it normalizes over every axis but the last, and
    elsewhere (masked inputs, other axes, `synchronized=True`, statistics
    global across replicas) with Keras's computation, its moments made
    exact (the mean first, then the mean squared deviation from it). Values
    and moving statistics are Keras's. Returns the batch-norm layers."""
    norms = [sub for sub in keras_internals.sublayers(layer)
             if isinstance(sub, keras.layers.BatchNormalization)]
    for norm in norms:
        keras_internals.replace_moments(norm, functools.partial(_moments, norm))
        if "call" not in vars(norm):
            norm.call = functools.partial(_call, norm, norm.call)
    return norms


def normalize(x, gamma, beta, epsilon):
    """Batch norm in training mode over every axis of `x` but the last.

    For float32, the forward and backward passes are TensorFlow's fused
    kernels, except under XLA (`xla.is_compiling()`), whose lowering of them
    loses precision (a second-order meta-gradient through conv4 came out 4%
    off); otherwise the forward pass is element-wise and the backward pass
    the closed-form gradient (`_gradients_from_statistics`). The backward
    pass's own derivatives are those of `_exact_gradients`, exact at every
    order.

    Args:
      x: `[..., C]`.
      gamma, beta: `[C]`, the scale and offset, in `x`'s dtype.
      epsilon: added to the variance.

    Returns:
      `(y, mean, variance)`: `y` `[..., C]`; the batch `mean` and (biased)
      `variance` `[C]` for the moving averages, carrying no gradient.
    """
    channels = x.shape[-1]
    images = x if x.shape.rank == 4 else tf.reshape(x, [-1, 1, 1, channels])
    statistics = {}

    @tf.custom_gradient
    def forward(images, gamma, beta):
        reserved = None
        if x.dtype == tf.float32 and epsilon >= FUSED_MIN_EPSILON and not xla.is_compiling():
            y, mean, variance, *reserved = tf.raw_ops.FusedBatchNormV3(
                x=images, scale=gamma, offset=beta, mean=tf.zeros([0], gamma.dtype),
                variance=tf.zeros([0], gamma.dtype), epsilon=epsilon, is_training=True)
            count = tf.cast(tf.size(images) // channels, variance.dtype)
            variance = variance * (count - 1) / count  # the kernel's is unbiased
        else:
            mean, variance = _image_moments(images)
            y = (images - mean) * (gamma * tf.math.rsqrt(variance + epsilon)) + beta
        statistics.update(mean=tf.stop_gradient(mean), variance=tf.stop_gradient(variance))
        return y, lambda dy: _input_gradients(dy, images, gamma, mean, variance, epsilon,
                                              reserved)

    y = forward(images, gamma, beta)
    if y.shape.rank != x.shape.rank:
        y = tf.reshape(y, tf.shape(x))
    return y, statistics["mean"], statistics["variance"]


# Below this epsilon cuDNN would clamp it: such layers run element-wise.
FUSED_MIN_EPSILON = 1e-5


def _input_gradients(dy, images, gamma, mean, variance, epsilon, reserved=None):
    """`(dx, dgamma, dbeta)` of batch norm in training mode for the incoming
    gradient `dy` `[N, H, W, C]`: TensorFlow's fused gradient kernel on the
    fused forward pass's `reserved` outputs (its last three), else the
    closed form from the forward pass's statistics. Their derivatives (a
    second-order meta-gradient's) recompute the statistics from `images` and
    differentiate `_exact_gradients`."""

    @tf.custom_gradient
    def gradients(dy, images, gamma):
        if reserved is not None:
            dx, dgamma, dbeta, *_ = tf.raw_ops.FusedBatchNormGradV3(
                y_backprop=dy, x=images, scale=gamma, reserve_space_1=reserved[0],
                reserve_space_2=reserved[1], reserve_space_3=reserved[2], epsilon=epsilon,
                is_training=True)
            result = dx, dgamma, dbeta
        else:
            result = _gradients_from_statistics(dy, images, gamma, mean, variance, epsilon)

        def second_order(*upstream):
            # Read outside the tape: inside a while loop's gradient each read
            # pops a stack of saved activations, and a tape that saw the pop
            # would fill the rest of the stack with zeros.
            inputs = [tf.identity(t) for t in (dy, images, gamma)]
            upstream = [tf.zeros_like(r) if u is None else u for u, r in zip(upstream, result)]
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                exact = _exact_gradients(*inputs, epsilon)
            return tape.gradient(exact, inputs, output_gradients=upstream,
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)

        return result, second_order

    return gradients(dy, images, gamma)


def _gradients_from_statistics(dy, images, gamma, mean, variance, epsilon):
    """Batch norm's gradients for the batch statistics `mean`, `variance`
    `[C]` of `images` `[N, H, W, C]`, in the fewest passes over it:
    dx = a·dy + b·x + c per channel (see `_exact_gradients`)."""
    inverse_std = tf.math.rsqrt(variance + epsilon)
    count = tf.cast(tf.size(images) // tf.shape(images)[-1], images.dtype)
    dbeta = tf.reduce_sum(dy, axis=[0, 1, 2])
    dgamma = (tf.reduce_sum(dy * images, axis=[0, 1, 2]) - mean * dbeta) * inverse_std
    slope = gamma * inverse_std
    along_x = -slope * inverse_std * dgamma / count
    dx = slope * dy + (images * along_x - (along_x * mean + slope * dbeta / count))
    return dx, dgamma, dbeta


def _exact_gradients(dy, images, gamma, epsilon):
    """Batch norm's gradients in training mode as differentiable ops of
    `dy`, `images` and `gamma`, the statistics recomputed from `images`:
    with x̂ the normalized input and n the count per channel,
    dβ = Σ dy, dγ = Σ dy·x̂, dx = γ/σ · (dy − (dβ + x̂·dγ) / n)."""
    return _gradients_from_statistics(dy, images, gamma, *_image_moments(images), epsilon)


def _image_moments(images):
    """Mean and biased variance `[C]` of `[N, H, W, C]`, exact at every order."""
    mean = tf.reduce_mean(images, axis=[0, 1, 2])
    return mean, tf.reduce_mean(tf.square(images - mean), axis=[0, 1, 2])


def _call(norm, keras_call, inputs, training=None, mask=None):
    """`norm`'s call: `normalize` in training mode where it applies (see
    `exact_batch_norm`), else `keras_call`; moving statistics as Keras's."""
    rank = inputs.shape.rank
    if (not (training and norm.trainable) or mask is not None or norm.synchronized
            or getattr(norm, "renorm", False) or rank is None
            or list(keras_internals.reduction_axes(norm)) != list(range(rank - 1))
            or id(norm) in getattr(_GLOBAL, "ids", ())):
        return keras_call(inputs, training=training, mask=mask)
    x = tf.convert_to_tensor(inputs)
    if x.dtype in (tf.float16, tf.bfloat16):  # as Keras: computed in float32
        x = tf.cast(x, tf.float32)
    channels = x.shape[-1]
    gamma = tf.cast(norm.gamma, x.dtype) if norm.scale else tf.ones([channels], x.dtype)
    beta = tf.cast(norm.beta, x.dtype) if norm.center else tf.zeros([channels], x.dtype)
    y, mean, variance = normalize(x, gamma, beta, norm.epsilon)
    for moving, value in ((norm.moving_mean, mean), (norm.moving_variance, variance)):
        moving.assign(tf.cast(moving, x.dtype) * norm.momentum + value * (1.0 - norm.momentum))
    return tf.cast(y, norm.compute_dtype)


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
