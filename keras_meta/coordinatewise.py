"""Coordinate-wise LSTM pieces shared by `MetaLSTM` and `LearnedOptimizer`.

A coordinate-wise LSTM applies the same small LSTM to every coordinate of a
parameter vector independently: `N` coordinates are `N` rows of one batch.
Its inputs (gradients, losses) span many orders of magnitude, so they are
first preprocessed as in Andrychowicz et al. (2016, appendix A).
"""

import math

import numpy as np
import tensorflow as tf

PREPROCESSING_P = 10.0


def preprocess(x, p=PREPROCESSING_P):
    """`x` `[N]` → `[N, 2]`: `(log|x| / p, sign x)` where `|x| ≥ e^−p`, else
    `(−1, e^p · x)` (Andrychowicz et al. 2016, appendix A)."""
    threshold = math.exp(-p)
    magnitude = tf.abs(x)
    large = magnitude >= threshold
    # The maximum keeps the logarithm (and its gradient) finite where x = 0.
    log_part = tf.where(large, tf.math.log(tf.maximum(magnitude, threshold)) / p, -tf.ones_like(x))
    sign_part = tf.where(large, tf.sign(x), math.exp(p) * x)
    return tf.stack([log_part, sign_part], axis=-1)


def lstm_step(inputs, state, kernel, recurrent_kernel, bias):
    """One LSTM step for `N` independent rows (Keras's gate order i, f, c, o).

    Args:
      inputs: `[N, I]`.
      state: `(h, c)`, each `[N, H]`.
      kernel: `[I, 4H]`; recurrent_kernel: `[H, 4H]`; bias: `[4H]`.

    Returns:
      The new `(h, c)`.
    """
    h, c = state
    z = tf.matmul(inputs, kernel) + tf.matmul(h, recurrent_kernel) + bias
    input_gate, forget_gate, candidate, output_gate = tf.split(z, 4, axis=-1)
    c = tf.sigmoid(forget_gate) * c + tf.sigmoid(input_gate) * tf.tanh(candidate)
    return tf.sigmoid(output_gate) * tf.tanh(c), c


def add_lstm_weights(layer, inputs, units, name):
    """Adds an LSTM's `(kernel [inputs, 4·units], recurrent_kernel [units, 4·units],
    bias [4·units])` to `layer`; the forget-gate bias starts at 1."""

    def unit_forget_bias(shape, dtype=None):
        return np.concatenate([np.zeros(units), np.ones(units), np.zeros(2 * units)]).astype(dtype)

    return (
        layer.add_weight(shape=(inputs, 4 * units), initializer="glorot_uniform",
                         name=f"{name}_kernel"),
        layer.add_weight(shape=(units, 4 * units), initializer="orthogonal",
                         name=f"{name}_recurrent_kernel"),
        layer.add_weight(shape=(4 * units,), initializer=unit_forget_bias, name=f"{name}_bias"),
    )


def flatten(tensors):
    """A list of tensors → one vector `[N]` of all their elements."""
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


def unflatten(vector, like):
    """Splits `vector` `[N]` into tensors shaped as the tensors of `like`."""
    sizes = [int(np.prod(t.shape)) for t in like]
    return [tf.reshape(part, t.shape) for part, t in zip(tf.split(vector, sizes), like)]

