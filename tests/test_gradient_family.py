"""Reptile, Meta-SGD and ANIL against the independent NumPy implementation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from tests import numpy_mlp
from tests.test_maml import random_episode, tanh_maml, tasks_of


def gradients(model, inputs, query_y):
    model(inputs)
    grads, _, _ = model.meta_gradients(inputs, tf.constant(query_y))
    return [g.numpy() for g in grads]


@pytest.mark.parametrize("outer_lr, inner_batch_size", [(1.0, None), (0.25, None), (1.0, 3)])
def test_reptile_moves_theta_towards_the_mean_adapted_weights(float64, outer_lr, inner_batch_size):
    model = tanh_maml(km.Reptile, inner_lr=0.2, inner_steps=3, inner_batch_size=inner_batch_size)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=outer_lr), loss="mse")
    inputs, query_y = random_episode(5)
    theta = model.learner.get_weights()
    adapted = [numpy_mlp.adapt(theta, sx, sy, 0.2, 3, batch_size=inner_batch_size)
               for sx, sy, _, _ in tasks_of(inputs, query_y)]
    mean_adapted = [np.mean(ws, axis=0) for ws in zip(*adapted)]
    model.train_on_batch(inputs, query_y)
    for new, old, target in zip(model.learner.get_weights(), theta, mean_adapted):
        np.testing.assert_allclose(new, old + outer_lr * (target - old), rtol=1e-10, atol=1e-12)


def test_reptile_reports_the_query_loss_at_the_adapted_weights(float64):
    model = tanh_maml(km.Reptile, inner_lr=0.2, inner_steps=2)
    inputs, query_y = random_episode(6)
    theta = model.learner.get_weights()
    logs = model.train_on_batch(inputs, query_y, return_dict=True)
    expected = np.mean([numpy_mlp.mse(numpy_mlp.adapt(theta, sx, sy, 0.2, 2), qx, qy)
                        for sx, sy, qx, qy in tasks_of(inputs, query_y)])
    assert logs["loss"] == pytest.approx(expected, rel=1e-9)


def test_meta_sgd_with_uniform_rates_has_the_gradient_of_maml(float64):
    inputs, query_y = random_episode(7)
    maml_grads = gradients(tanh_maml(km.MAML, inner_lr=0.3, inner_steps=2), inputs, query_y)
    meta_sgd = tanh_maml(km.MetaSGD, inner_lr_init=0.3, inner_steps=2)
    meta_sgd_grads = gradients(meta_sgd, inputs, query_y)
    learner_paths = [v.path for v in meta_sgd.learner.trainable_variables]
    by_path = dict(zip([v.path for v in meta_sgd.trainable_variables], meta_sgd_grads))
    for path, expected in zip(learner_paths, maml_grads):
        np.testing.assert_allclose(by_path[path], expected, rtol=1e-10, atol=1e-13)


def test_meta_sgd_rate_gradients_match_finite_differences(float64):
    model = tanh_maml(km.MetaSGD, inner_lr_init=0.3, inner_steps=2)
    inputs, query_y = random_episode(8)
    model(inputs)
    rng = np.random.default_rng(0)
    for rate in model.inner_rates:  # rates that differ per element
        rate.assign(rng.uniform(0.1, 0.5, rate.shape))
    theta = model.learner.get_weights()
    rates = [r.numpy() for r in model.inner_rates]
    grads = dict(zip([v.path for v in model.trainable_variables], gradients(model, inputs, query_y)))
    tasks = tasks_of(inputs, query_y)
    expected_rates = numpy_mlp.finite_difference(
        lambda r: numpy_mlp.meta_loss(theta, tasks, list(r), 2), rates)
    expected_theta = numpy_mlp.finite_difference_grad(theta, tasks, rates, 2)
    for rate, expected in zip(model.inner_rates, expected_rates):
        np.testing.assert_allclose(grads[rate.path], expected, rtol=1e-6, atol=1e-8)
    for weight, expected in zip(model.learner.trainable_variables, expected_theta):
        np.testing.assert_allclose(grads[weight.path], expected, rtol=1e-6, atol=1e-8)


def test_anil_adapts_only_the_head_and_trains_the_body_exactly(float64):
    model = tanh_maml(km.ANIL, inner_lr=0.3, inner_steps=2)
    inputs, query_y = random_episode(9)
    model(inputs)
    assert model.adaptation_mask() == [False, False, False, False, True, True]
    weights, frozen = model.functional_learner.initial_weights()
    adapted = model.adapt(weights, frozen, inputs["support_x"][0], inputs["support_y"][0], 2)
    for before, after in zip(weights[:4], adapted[:4]):
        np.testing.assert_array_equal(before.numpy(), after.numpy())
    assert np.abs(adapted[4].numpy() - weights[4].numpy()).max() > 1e-3
    theta = model.learner.get_weights()
    grads = gradients(model, inputs, query_y)
    expected = numpy_mlp.finite_difference_grad(theta, tasks_of(inputs, query_y), 0.3, 2,
                                                adapted=[4, 5])
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-8)
    assert np.abs(grads[0]).max() > 1e-3  # the body learns through the outer loss


def test_anil_head_by_name_and_bad_names():
    learner = km.learners.mlp(hidden=(8, 8))
    model = km.ANIL(learner, head=[learner.layers[1].name, learner.layers[2].name], inner_lr=0.1)
    assert model.adaptation_mask() == [False, False, True, True, True, True]
    with pytest.raises(ValueError, match="`head` must name layers of the learner.*unknown"):
        km.ANIL(learner, head="classifier")


@pytest.mark.parametrize("cls, kwargs", [
    (km.Reptile, {"inner_lr": 0.1, "inner_steps": 2, "inner_batch_size": 4}),
    (km.MetaSGD, {"inner_lr_init": 0.05, "first_order": True}),
    (km.ANIL, {"inner_lr": 0.1, "head": None}),
])
def test_save_and_load_round_trip(tmp_path, cls, kwargs):
    model = cls(km.learners.mlp(hidden=(8,)), **kwargs)
    model.compile(optimizer="adam", loss="mse")
    inputs, query_y = random_episode(10, dtype="float32")
    model.fit(inputs, query_y, epochs=2, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded) is cls
    np.testing.assert_array_equal(model.predict(inputs, verbose=0), loaded.predict(inputs, verbose=0))
    if cls is km.MetaSGD:
        for a, b in zip(model.inner_rates, loaded.inner_rates):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert np.abs(model.inner_rates[0].numpy() - 0.05).max() > 0  # the rates were trained
