"""Inner update rules: a user's rule (momentum) gets the exact meta-gradient,
rules chain, and constructors reject the arguments they do not use."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from tests import numpy_mlp
from tests.test_maml import random_episode, tanh_maml, tasks_of


class Momentum(km.update_rules.UpdateRule):
    """Heavy-ball momentum, as a user writes it: v ← μv + g, w ← w − αv."""

    def __init__(self, learning_rate, momentum):
        self.learning_rate, self.momentum = learning_rate, momentum

    def init(self, params):
        return [tf.zeros_like(p) for p in params]

    def update(self, grads, state, params, *, step, loss):
        velocity = [v if g is None else self.momentum * v + g for v, g in zip(state, grads)]
        return [None if g is None else -self.learning_rate * v
                for v, g in zip(velocity, grads)], velocity


def numpy_momentum_meta_loss(theta, tasks, lr, momentum, steps):
    """Mean query MSE after `steps` momentum steps, in NumPy."""
    losses = []
    for sx, sy, qx, qy in tasks:
        params, velocity = list(theta), [np.zeros_like(p) for p in theta]
        for _ in range(steps):
            grads = numpy_mlp.mse_grad(params, sx, sy)
            velocity = [momentum * v + g for v, g in zip(velocity, grads)]
            params = [p - lr * v for p, v in zip(params, velocity)]
        losses.append(numpy_mlp.mse(params, qx, qy))
    return np.mean(losses)


@pytest.mark.parametrize("recompute", [False, True])
def test_a_momentum_rule_gets_the_exact_meta_gradient(float64, recompute):
    model = tanh_maml(km.MAML, inner_rule=Momentum(0.2, 0.8), inner_steps=3,
                      recompute_inner_steps=recompute)
    inputs, query_y = random_episode(11)
    model(inputs)
    theta = model.learner.get_weights()
    grads, _, loss = model.meta_gradients(inputs, tf.constant(query_y))
    tasks = tasks_of(inputs, query_y)
    assert float(loss) == pytest.approx(numpy_momentum_meta_loss(theta, tasks, 0.2, 0.8, 3),
                                        rel=1e-10)
    expected = numpy_mlp.finite_difference(
        lambda p: numpy_momentum_meta_loss(p, tasks, 0.2, 0.8, 3), theta)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-8)


def test_inner_clipnorm_is_clipping_chained_before_the_rule(float64):
    inputs, query_y = random_episode(12)
    clipped = tanh_maml(km.MAML, inner_lr=0.3, inner_steps=2, inner_clipnorm=0.05)
    chained = tanh_maml(km.MAML, inner_steps=2, inner_rule=km.update_rules.chain(
        km.update_rules.ClipByNorm(0.05), km.update_rules.SGD(0.3)))
    plain = tanh_maml(km.MAML, inner_lr=0.3, inner_steps=2)
    results = []
    for model in (clipped, chained, plain):
        model(inputs)
        results.append(model.predict_on_batch(inputs))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)
    assert np.max(np.abs(results[0] - results[2])) > 1e-3  # the clipping did something


def test_a_model_with_a_chained_rule_saves_and_reloads(tmp_path):
    rule = km.update_rules.chain(km.update_rules.ClipByNorm(1.0), km.update_rules.LearnedRates(0.05))
    model = tanh_maml(km.MAML, inner_rule=rule, inner_steps=2)
    inputs, query_y = random_episode(13, dtype="float32")
    model.fit(tf.data.Dataset.from_tensors((inputs, query_y)).repeat(3), verbose=0)
    path = tmp_path / "chained.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.inner_rule, km.update_rules.Chain)
    assert [type(r) for r in restored.inner_rule.rules] == [km.update_rules.ClipByNorm,
                                                            km.update_rules.LearnedRates]
    np.testing.assert_allclose(restored.predict_on_batch(inputs), model.predict_on_batch(inputs),
                               rtol=1e-6)


@pytest.mark.parametrize("cls, kwargs, instead", [
    (km.MetaSGD, {"inner_lr": 0.1}, "inner_lr_init"),
    (km.MetaSGD, {"inner_rule": km.update_rules.SGD(0.1)}, "inner_rule"),
    (km.MetaLSTM, {"inner_lr": 0.1}, "input gate"),
    (km.MAMLPlusPlus, {"first_order": True}, "first_order_epochs"),
    (km.Reptile, {"recompute_inner_steps": True}, "first order"),
    (km.MAML, {"inner_lr": 0.1, "inner_rule": km.update_rules.SGD(0.1)}, "not both"),
])
def test_constructors_reject_arguments_they_do_not_use(cls, kwargs, instead):
    with pytest.raises(TypeError, match=instead):
        cls(km.learners.mlp(hidden=(4,)), **kwargs)


def test_an_inner_rule_must_be_an_update_rule():
    with pytest.raises(TypeError, match="`inner_rule` must be a keras_meta.update_rules.UpdateRule"):
        km.MAML(km.learners.mlp(hidden=(4,)), inner_rule=lambda grads: grads)


def test_a_rule_without_update_cannot_be_created():
    class NoUpdate(km.update_rules.UpdateRule):
        def init(self, params):
            return []

    with pytest.raises(TypeError, match="abstract method update"):
        NoUpdate()
