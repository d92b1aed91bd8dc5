"""MetaLSTM: with its gates fixed it is SGD (against the independent NumPy
MLP), its meta-gradient through the LSTM (loss input included) matches
finite differences, and it saves, reloads and traces."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from tests import numpy_mlp
from tests.test_maml import random_episode, tanh_maml, tasks_of


def fix_gates(model, forget_bias, learning_rate):
    """Gate weights that ignore the LSTM: `f = σ(forget_bias)`, `i = learning_rate`."""
    lstm = model.inner_rule
    lstm.forget_kernel.assign(np.zeros(lstm.forget_kernel.shape))
    lstm.forget_bias.assign(forget_bias)
    lstm.input_kernel.assign(np.zeros(lstm.input_kernel.shape))
    lstm.input_bias.assign(math.log(learning_rate / (1.0 - learning_rate)))


def test_gates_forget_one_input_lr_are_sgd_steps(float64):
    model = tanh_maml(km.MetaLSTM, inner_steps=3)
    inputs, _ = random_episode(0)
    model(inputs)
    fix_gates(model, forget_bias=40.0, learning_rate=0.3)  # σ(40) is 1 in float64
    theta = model.learner.get_weights()
    weights, frozen = model.initial_weights()
    for t in range(2):
        sx, sy = inputs["support_x"][t], inputs["support_y"][t]
        trajectory = model.adapt(weights, frozen, sx, sy, 3, trajectory=True)
        for steps, adapted in enumerate(trajectory):
            expected = numpy_mlp.adapt(theta, sx, sy, 0.3, steps)
            for a, e in zip(adapted, expected):
                np.testing.assert_allclose(a.numpy(), e, rtol=1e-12, atol=1e-14)
    predictions = model(inputs).numpy()
    for t, (sx, sy, qx, _) in enumerate(tasks_of(inputs, np.zeros_like(inputs["query_x"]))):
        expected, _ = numpy_mlp.forward(numpy_mlp.adapt(theta, sx, sy, 0.3, 3), qx)
        np.testing.assert_allclose(predictions[t], expected, rtol=1e-12, atol=1e-14)


def test_forget_gate_below_one_shrinks_the_weights(float64):
    model = tanh_maml(km.MetaLSTM, inner_steps=1)
    inputs, _ = random_episode(1)
    model(inputs)
    forget = 0.9
    fix_gates(model, forget_bias=math.log(forget / (1 - forget)), learning_rate=0.2)
    theta = model.learner.get_weights()
    sx, sy = inputs["support_x"][0], inputs["support_y"][0]
    adapted = model.adapt(*model.initial_weights(), sx, sy, 1)
    grads = numpy_mlp.mse_grad(theta, sx, sy)
    for a, w, g in zip(adapted, theta, grads):
        np.testing.assert_allclose(a.numpy(), forget * w - 0.2 * g, rtol=1e-12, atol=1e-14)


def test_inner_clipnorm_clips_the_gradients_the_lstm_reads(float64):
    model = tanh_maml(km.MetaLSTM, inner_steps=1, inner_clipnorm=0.05)
    inputs, _ = random_episode(1)
    model(inputs)
    fix_gates(model, forget_bias=40.0, learning_rate=0.2)
    theta = model.learner.get_weights()
    sx, sy = inputs["support_x"][0], inputs["support_y"][0]
    adapted = model.adapt(*model.initial_weights(), sx, sy, 1)
    for a, w, g in zip(adapted, theta, numpy_mlp.mse_grad(theta, sx, sy)):
        clipped = g * min(1.0, 0.05 / np.linalg.norm(g))
        np.testing.assert_allclose(a.numpy(), w - 0.2 * clipped, rtol=1e-12, atol=1e-14)


def test_meta_gradient_matches_finite_differences(float64):
    model = tanh_maml(km.MetaLSTM, inner_steps=2, first_order=False, hidden_units=3)
    inputs, query_y = random_episode(2)
    model(inputs)
    grads, _, _ = model.meta_gradients(inputs, tf.constant(query_y))
    by_path = {v.path: g.numpy() for v, g in zip(model.trainable_variables, grads)}

    meta_loss_function = tf.function(lambda: model.meta_loss(inputs, tf.constant(query_y))[1])

    def meta_loss():
        return float(meta_loss_function())

    lstm = model.inner_rule
    kernel = lstm.lstm_weights[0]
    checks = [(lstm.forget_bias, ()), (lstm.input_bias, ()), (lstm.input_kernel, (0,)),
              (kernel, (2, 0)), (kernel, (3, 1)),  # rows 2-3 read the preprocessed loss
              (model.learner.trainable_variables[0], (0, 1))]
    epsilon = 1e-6
    for variable, index in checks:
        value = np.array(variable.numpy())
        values = []
        for sign in (1, -1):
            moved = value.copy()
            moved[index] += sign * epsilon
            variable.assign(moved)
            values.append(meta_loss())
        variable.assign(value)
        expected = (values[0] - values[1]) / (2 * epsilon)
        assert by_path[variable.path][index] == pytest.approx(expected, rel=1e-5, abs=1e-9)
    assert np.abs(by_path[kernel.path][2:4]).max() > 1e-8, "the loss input must reach the update"


def test_bad_hidden_units():
    with pytest.raises(ValueError, match="`hidden_units` must be an int >= 1"):
        km.MetaLSTM(km.learners.mlp(hidden=(4,)), hidden_units=0)


def test_first_order_meta_gradient_reaches_the_meta_learner():
    keras.utils.set_random_seed(3)
    model = km.MetaLSTM(km.learners.mlp(hidden=(8,)), inner_steps=2, hidden_units=4)
    model.compile(optimizer="adam", loss="mse")
    inputs, query_y = random_episode(4, dtype="float32")
    model(inputs)
    grads, _, _ = model.meta_gradients(inputs, tf.constant(query_y))
    by_path = {v.path: g.numpy() for v, g in zip(model.trainable_variables, grads)}
    lstm = model.inner_rule
    for variable in [lstm.forget_bias, lstm.input_bias, *lstm.lstm_weights,
                     *model.learner.trainable_variables]:
        assert np.abs(by_path[variable.path]).max() > 0, variable.path


def test_save_load_and_traced_predictions(tmp_path):
    keras.utils.set_random_seed(3)
    model = km.MetaLSTM(km.learners.mlp(hidden=(8,)), inner_steps=2, hidden_units=4)
    model.compile(optimizer="adam", loss="mse")
    inputs, _ = random_episode(4, dtype="float32")
    expected = model(inputs).numpy()
    model.optimizer.build(model.trainable_variables)  # as after `fit`
    model.save(tmp_path / "meta_lstm.keras")
    loaded = keras.saving.load_model(tmp_path / "meta_lstm.keras")
    assert type(loaded) is km.MetaLSTM and loaded.hidden_units == 4
    np.testing.assert_array_equal(loaded(inputs).numpy(), expected)
    spec = {"support_x": tf.TensorSpec([None, None, 1]), "support_y": tf.TensorSpec([None, None, 1]),
            "query_x": tf.TensorSpec([None, None, 1])}
    traced = tf.function(lambda x: loaded(x), input_signature=[spec])
    np.testing.assert_allclose(traced(inputs).numpy(), expected, rtol=1e-5, atol=1e-6)
