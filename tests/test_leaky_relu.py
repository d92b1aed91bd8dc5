"""Leaky ReLU whose backward pass reads its output (`keras_meta.leaky_relu`):
the same values and derivatives as TensorFlow's, without keeping its input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta import leaky_relu
from tests.test_batch_norm import check_against_finite_differences
from tests.test_execution_paths import float64_episode


@pytest.mark.parametrize("slope", [0.1, 0.0, 2.0])
def test_values_and_first_and_second_derivatives_are_tensorflows(slope):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(4, 5)))
    upstream, direction = (tf.constant(rng.normal(size=(4, 5))) for _ in range(2))

    def derivatives(activation):
        """Value, vector-Jacobian product and its derivative in `upstream`
        and `x` along `direction` (what a second-order meta-gradient reads)."""
        with tf.GradientTape(persistent=True) as outer:
            outer.watch([x, upstream])
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = activation(x, slope)
            vjp = inner.gradient(y, x, output_gradients=upstream)
            along = tf.reduce_sum(vjp * direction)
        return [y, vjp, *outer.gradient(along, [upstream, x],
                                        unconnected_gradients=tf.UnconnectedGradients.ZERO)]

    ours = derivatives(leaky_relu.leaky_relu)
    theirs = derivatives(lambda x, slope: tf.nn.leaky_relu(x, alpha=slope))
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_the_backward_pass_reads_the_output_not_the_input():
    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = leaky_relu.leaky_relu(tf.math.exp(x), 0.1)
        return tape.gradient(y, x)

    graph = gradient.get_concrete_function(tf.TensorSpec([3], tf.float32)).graph
    [backward] = [op for op in graph.get_operations() if op.type == "LeakyReluGrad"]
    assert backward.inputs[1].op.type == "LeakyRelu"  # not Exp, the activation's input


def test_every_meta_model_adapts_through_it_with_an_exact_meta_gradient(float64):
    """Second-order MAML through convolutions, batch norm and leaky ReLU
    against central differences of the meta-loss in float64."""
    keras.utils.set_random_seed(3)
    learner = keras.Sequential([keras.Input((28, 28, 1))] + [
        layer for width in (3, 3) for layer in (
            keras.layers.Conv2D(width, 3, strides=2), keras.layers.BatchNormalization(),
            keras.layers.LeakyReLU(0.1))] + [
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model = km.MAML(learner, inner_lr=0.3, inner_steps=2)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    activations = [layer for layer in learner.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert all("call" in vars(layer) for layer in activations)  # computed by leaky_relu
    inputs, query_y = float64_episode(2)
    model(inputs)
    _, checked = check_against_finite_differences(model, inputs, query_y)
    assert checked >= 2 * len(model.trainable_variables)
