"""Second-order meta-gradients through batch norm against finite differences.

TensorFlow's `tf.nn.moments` (which Keras's batch norm uses) stops the
gradient through the mean inside the variance; that leaves first
derivatives exact but not second ones. The inner loop's learners compute
their statistics exactly (`keras_meta.batch_norm`); these tests check the
whole meta-gradient of conv4 learners with batch norm, coordinate by
coordinate, against central differences of the meta-loss in float64.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta import batch_norm
from tests.test_execution_paths import CONFIGURATIONS, build, float64_episode

SECOND_ORDER = ["MAML", "MetaSGD", "ANIL", "MAML++ all options"]


def coordinates(variable, count, rng):
    """`count` random coordinates of `variable` (all of them if it has fewer)."""
    indices = rng.choice(int(np.prod(variable.shape)), min(count, int(np.prod(variable.shape))),
                         replace=False)
    return [np.unravel_index(i, variable.shape) for i in indices]


def check_against_finite_differences(model, inputs, query_y, per_variable=2, epsilon=1e-6):
    grads = [g.numpy() for g in tf.function(model.meta_gradients)(inputs, query_y)[0]]
    meta_loss = tf.function(lambda: model.meta_loss(inputs, query_y)[1])
    rng = np.random.default_rng(0)
    checked = 0
    for variable, grad in zip(model.trainable_variables, grads):
        base = variable.numpy()
        for index in coordinates(variable, per_variable, rng):
            values = []
            for sign in (1, -1):
                shifted = base.copy()
                shifted[index] += sign * epsilon
                variable.assign(shifted)
                values.append(float(meta_loss()))
            variable.assign(base)
            expected = (values[0] - values[1]) / (2 * epsilon)
            assert grad[index] == pytest.approx(expected, rel=1e-5, abs=1e-8), (
                variable.path, index)
            checked += 1
    return grads, checked


# The default suite checks MAML both ways and MAML++ with recomputed steps (its rates and
# per-step batch norm); the other cases run with -m slow.
DEFAULT_CASES = {("MAML", False), ("MAML", True), ("MAML++ all options", True)}


@pytest.mark.parametrize("name, recompute", [
    pytest.param(name, recompute, id=f"{name}-{'recomputed' if recompute else 'stored'}",
                 marks=() if (name, recompute) in DEFAULT_CASES else pytest.mark.slow)
    for name in SECOND_ORDER for recompute in (False, True)])
def test_meta_gradient_through_batch_norm_matches_finite_differences(float64, name, recompute):
    cls, options = CONFIGURATIONS[name]
    keras.utils.set_random_seed(7)
    model = build(cls, {**options, "recompute_inner_steps": recompute}, True,
                  km.learners.conv4(ways=3, filters=3))
    inputs, query_y = float64_episode(6)
    model(inputs)
    grads, checked = check_against_finite_differences(model, inputs, query_y)
    assert checked >= 2 * len(model.learner.trainable_variables)
    # A convolution's bias followed by batch norm cannot change the loss.
    conv_bias = model.learner.layers[0].bias
    bias_grad = next(g for g, v in zip(grads, model.trainable_variables) if v is conv_bias)
    np.testing.assert_allclose(bias_grad, 0.0, atol=1e-12)


@pytest.mark.parametrize("shape", [(7, 5, 5, 4), (9, 4), (3, 6, 4)],
                         ids=["images", "vectors", "sequences"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exact_batch_norm_gives_keras_values_and_first_gradients(shape, dtype):
    """Fused (float32) or element-wise (float64): the outputs, the moving
    statistics and the first derivatives are Keras's own."""
    keras.utils.set_random_seed(8)
    plain, exact = (keras.layers.BatchNormalization(momentum=0.5, dtype=dtype) for _ in range(2))
    x = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, shape), dtype)
    plain.build(x.shape)
    exact.build(x.shape)
    exact.set_weights([w + 0.1 * i for i, w in enumerate(plain.get_weights())])
    plain.set_weights(exact.get_weights())
    assert batch_norm.exact_batch_norm(exact) == [exact]
    upstream = tf.constant(np.random.default_rng(2).normal(size=shape), dtype)
    results = []
    for layer in (plain, exact):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x, *layer.trainable_variables])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance])
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    for ours, keras_value in zip(results[1], results[0]):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(keras_value),
                                   rtol=tolerance, atol=tolerance)


def second_order_terms(x, gamma, beta, weights):
    """Loss, its first derivatives and the gradient of a function of them,
    through `batch_norm.normalize`."""
    with tf.GradientTape() as outer:
        outer.watch([x, gamma, beta])
        with tf.GradientTape() as inner:
            inner.watch([x, gamma, beta])
            loss = tf.reduce_sum(tf.sin(batch_norm.normalize(x, gamma, beta, 1e-3)[0]) * weights)
        dx, dgamma, dbeta = inner.gradient(loss, [x, gamma, beta])
        value = tf.reduce_sum(dx**2) + tf.reduce_sum(dgamma * gamma) + tf.reduce_sum(dbeta**3)
    return [loss, dx, dgamma, dbeta, *outer.gradient(value, [x, gamma, beta])]


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_fused_kernels_match_the_exact_derivatives_in_float64(mode):
    """The fused float32 kernels, and the second derivatives taken through
    them, agree with the element-wise float64 computation, whose second
    derivatives the finite-difference tests above check."""
    rng = np.random.default_rng(3)
    arrays = [rng.normal(1.0, 2.0, (6, 3, 3, 4)), rng.normal(size=4), rng.normal(size=4),
              rng.normal(size=(6, 3, 3, 4))]
    compute = second_order_terms if mode == "eager" else tf.function(second_order_terms)
    fused = compute(*(tf.constant(a, tf.float32) for a in arrays))
    exact = compute(*(tf.constant(a, tf.float64) for a in arrays))
    for ours, expected in zip(fused, exact):
        scale = np.abs(expected.numpy()).max()
        np.testing.assert_allclose(ours.numpy() / scale, expected.numpy() / scale, atol=2e-6)


def test_keras_moments_alone_would_give_a_wrong_second_order_gradient(float64):
    """The reason for `exact_batch_norm`: the same MAML gradient with Keras's
    own batch norm gives the batch-normalised bias a gradient."""
    keras.utils.set_random_seed(7)
    learner = km.learners.conv4(ways=3, filters=3)
    model = build(km.MAML, {"inner_lr": 0.3, "inner_steps": 1}, True, learner)
    inputs, query_y = float64_episode(6)
    model(inputs)
    for norm in batch_norm.exact_batch_norm(learner):
        del norm._moments, norm.call  # back to Keras's computation
    grads = tf.function(model.meta_gradients)(inputs, query_y)[0]
    bias_grad = next(g for g, v in zip(grads, model.trainable_variables)
                     if v is learner.layers[0].bias)
    assert np.abs(bias_grad.numpy()).max() > 1e-3
