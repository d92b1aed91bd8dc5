"""Leaky ReLU whose backward pass reads its output, not its input.

TensorFlow's gradient of `LeakyRelu` reads the layer's input. In a block
conv → batch norm → leaky ReLU → conv, that input is batch norm's output,
which nothing else needs for the backward pass (batch norm's own gradient
reads its input, the next convolution reads the leaky ReLU's output), so it
is kept only for the activation's gradient: a third copy of every such
activation map. With a slope α ≥ 0 (Keras allows no other) the output is
positive exactly where the input is, so the same gradient reads the output,
which the next layer keeps anyway, and the input is freed after the forward
pass. ResNet-12's tensors drop by about a fifth (see the README's
Performance section).

Its derivatives of every order are TensorFlow's: the backward pass is
`LeakyReluGrad` on the output, whose own gradient TensorFlow defines.
Every `MetaModel` applies `backward_from_outputs` to its learner.
"""

import functools

import keras
import tensorflow as tf

from keras_meta import keras_internals


def backward_from_outputs(layer):
    """Makes every `keras.layers.LeakyReLU` in `layer` (itself included)
    compute with `leaky_relu`. Returns those layers."""
    activations = [sub for sub in keras_internals.sublayers(layer)
                   if isinstance(sub, keras.layers.LeakyReLU)]
    for activation in activations:
        if "call" not in vars(activation):
            activation.call = functools.partial(_call, activation)
    return activations


def leaky_relu(x, negative_slope):
    """`tf.nn.leaky_relu(x, negative_slope)` (`x` any shape, a float dtype;
    `negative_slope` ≥ 0) whose gradient reads the output."""

    @tf.custom_gradient
    def forward(x):
        y = tf.nn.leaky_relu(x, alpha=negative_slope)
        return y, lambda dy: tf.raw_ops.LeakyReluGrad(gradients=dy, features=y,
                                                       alpha=negative_slope)

    return forward(x)


def _call(activation, inputs):
    """`activation`'s call: `leaky_relu` with its slope."""
    return leaky_relu(tf.convert_to_tensor(inputs), float(activation.negative_slope))
