"""Max pooling whose second derivative is exact everywhere, XLA included.

A second-order meta-gradient (MAML's) differentiates max pooling's backward
pass. TensorFlow's own derivative of that backward pass is exact, but under
XLA (`jit_compile=True`) it is lowered, for float32, by packing each input
value and its gradient into the two halves of one 32-bit word, so the
gradient keeps about three significant digits, and for float64 it does not
compile.

`exact_max_pooling` makes a layer's 2-D max poolings (channels last) run
`max_pool` under XLA (`xla.is_compiling()`): TensorFlow's max pooling and
its gradient kernel for the forward and backward passes, and for the
derivative of the backward pass, in ordinary ops, the incoming values
gathered at each window's maximum. Elsewhere Keras's computation runs:
TensorFlow's own kernel for that derivative is exact, and faster. Every
`MetaModel` applies `exact_max_pooling` to its learner.
"""

import functools

import keras
import tensorflow as tf

from keras_meta import keras_internals, xla


def exact_max_pooling(layer):
    """Makes every `keras.layers.MaxPooling2D` in `layer` (itself included)
    with channels-last inputs compute with `max_pool` under XLA.
    Returns those layers."""
    pools = [sub for sub in keras_internals.sublayers(layer)
             if isinstance(sub, keras.layers.MaxPooling2D)
             and sub.data_format == "channels_last"]
    for pool in pools:
        if "call" not in vars(pool):
            pool.call = functools.partial(_call, pool, pool.call)
    return pools


def max_pool(x, window, strides, padding):
    """2-D max pooling, equal to `tf.nn.max_pool2d(x, window, strides,
    padding)`, with derivatives of every order exact (see the module
    docstring).

    Args:
      x: `[N, H, W, C]`.
      window, strides: `(height, width)` each.
      padding: `"VALID"` or `"SAME"`.

    Returns:
      `[N, H', W', C]`.
    """
    options = dict(ksize=[1, *window, 1], strides=[1, *strides, 1], padding=padding)

    @tf.custom_gradient
    def forward(x):
        y = tf.raw_ops.MaxPool(input=x, **options)
        return y, lambda dy: _backward(x, y, dy, options)

    return forward(x)


def _backward(x, y, dy, options):
    """`dx` `[N, H, W, C]`: each window's `dy` added at its maximum
    (TensorFlow's kernel). Its derivative in `dy` is `_at_maxima`; where each
    maximum lies does not move with `x` or `y`: zero derivative there."""

    @tf.custom_gradient
    def gradient(x, y, dy):
        dx = tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=y, grad=dy, **options)

        def second_order(upstream):
            return tf.zeros_like(x), tf.zeros_like(y), _at_maxima(upstream, x, y, options)

        return dx, second_order

    return gradient(x, y, dy)


def _at_maxima(values, x, y, options):
    """`values` `[N, H, W, C]` read at each pooling window's maximum of `x`
    (the first one in row-major order on ties): `[N, H', W', C]`, the shape
    of the pooled `y`."""
    window, strides = options["ksize"][1:3], options["strides"][1:3]
    shape, out = tf.shape(x), tf.shape(y)
    if options["padding"] == "SAME":  # TensorFlow pads the extra row or column after
        pads = [[0, 0]]
        for axis in (1, 2):
            total = tf.maximum((out[axis] - 1) * strides[axis - 1] + window[axis - 1]
                               - shape[axis], 0)
            pads.append([total // 2, total - total // 2])
        pads.append([0, 0])
        x = tf.pad(x, pads, constant_values=x.dtype.min)
        values = tf.pad(values, pads)
    result = tf.zeros_like(y)
    found = tf.zeros(out, tf.bool)
    for row in range(window[0]):
        for column in range(window[1]):
            rows = slice(row, row + (out[1] - 1) * strides[0] + 1, strides[0])
            columns = slice(column, column + (out[2] - 1) * strides[1] + 1, strides[1])
            here = tf.logical_and(tf.equal(x[:, rows, columns], y), tf.logical_not(found))
            result = tf.where(here, values[:, rows, columns], result)
            found = tf.logical_or(found, here)
    return result


def _call(pool, keras_call, inputs):
    """`pool`'s call: `max_pool` under XLA, else `keras_call`."""
    if not xla.is_compiling():
        return keras_call(inputs)
    return max_pool(inputs, tuple(pool.pool_size), tuple(pool.strides), pool.padding.upper())
