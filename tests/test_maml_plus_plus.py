"""MAML++ options, each against an independent computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta.algorithms.maml_plus_plus import step_loss_weights
from tests import numpy_mlp
from tests.test_gradient_family import gradients
from tests.test_maml import image_episode, random_episode, tanh_maml, tasks_of


@pytest.mark.parametrize("epoch, expected", [
    (0, [0.2, 0.2, 0.2, 0.2, 0.2]),
    (5, [0.1, 0.1, 0.1, 0.1, 0.6]),
    (10, [0.006, 0.006, 0.006, 0.006, 0.976]),
    (40, [0.006, 0.006, 0.006, 0.006, 0.976]),
])
def test_multi_step_loss_weights_follow_the_schedule(epoch, expected):
    weights = step_loss_weights(5, epoch, anneal_epochs=10).numpy()
    np.testing.assert_allclose(weights, expected, atol=1e-12)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)


def test_weights_sum_to_one_at_every_epoch():
    for steps in (1, 2, 3, 7):
        for epoch in range(30):
            assert step_loss_weights(steps, epoch, 4).numpy().sum() == pytest.approx(1.0, abs=1e-12)


def plain_maml_plus_plus(**options):
    defaults = dict(learn_inner_rates=False, multi_step_loss=False, per_step_batch_norm=False)
    return tanh_maml(km.MAMLPlusPlus, inner_lr=0.3, inner_steps=2, **{**defaults, **options})


def test_multi_step_loss_and_its_gradient(float64):
    model = plain_maml_plus_plus(multi_step_loss=True, multi_step_loss_epochs=4)
    inputs, query_y = random_episode(11)
    model(inputs)
    model.set_epoch(3)
    theta = model.learner.get_weights()
    tasks = tasks_of(inputs, query_y)
    step_weights = step_loss_weights(2, 3, 4).numpy()

    def weighted_loss(params):
        return sum(w * numpy_mlp.meta_loss(params, tasks, 0.3, k + 1)
                   for k, w in enumerate(step_weights))

    _, loss = model.meta_loss(inputs, tf.constant(query_y))
    assert float(loss) == pytest.approx(weighted_loss(theta), rel=1e-12)
    for g, e in zip(gradients(model, inputs, query_y), numpy_mlp.finite_difference(weighted_loss, theta)):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-8)


def test_learned_per_step_rates(float64):
    model = plain_maml_plus_plus(learn_inner_rates=True, eval_inner_steps=2)
    inputs, query_y = random_episode(12)
    model(inputs)
    assert model.inner_rates.shape == (6, 2)  # (weight tensors × steps)
    np.testing.assert_array_equal(model.inner_rates.numpy(), 0.3)
    maml_grads = gradients(tanh_maml(km.MAML, inner_lr=0.3, inner_steps=2), inputs, query_y)
    grads = dict(zip([v.path for v in model.trainable_variables], gradients(model, inputs, query_y)))
    for v, expected in zip(model.learner.trainable_variables, maml_grads):
        np.testing.assert_allclose(grads[v.path], expected, rtol=1e-10, atol=1e-13)
    rates = np.random.default_rng(0).uniform(0.1, 0.5, (6, 2))
    model.inner_rates.assign(rates)
    theta = model.learner.get_weights()
    predictions = model.predict(inputs, verbose=0)
    for t, (sx, sy, qx, _) in enumerate(tasks_of(inputs, query_y)):
        adapted = numpy_mlp.adapt(theta, sx, sy, lambda step: list(rates[:, step]), 2)
        np.testing.assert_allclose(predictions[t], numpy_mlp.forward(adapted, qx)[0], rtol=1e-10)


def test_derivative_order_switches_at_the_configured_epoch(float64):
    inputs, query_y = random_episode(13)
    second = gradients(tanh_maml(km.MAML, inner_lr=0.3, inner_steps=2), inputs, query_y)
    first = gradients(tanh_maml(km.FOMAML, inner_lr=0.3, inner_steps=2), inputs, query_y)
    model = plain_maml_plus_plus(first_order_epochs=2)
    seen = []
    model.fit(inputs, query_y, epochs=4, verbose=0, callbacks=[keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(model.first_order))])
    assert seen == [True, True, False, False]
    assert int(model.epoch.numpy()) == 3
    model = plain_maml_plus_plus(first_order_epochs=2)
    for epoch, expected in ((0, first), (1, first), (2, second)):
        model.set_epoch(epoch)
        for g, e in zip(gradients(model, inputs, query_y), expected):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-13)


def test_per_step_batch_norm_weights():
    keras.utils.set_random_seed(0)
    model = km.MAMLPlusPlus(km.learners.conv4(ways=3, filters=4), inner_lr=0.4, inner_steps=2,
                            multi_step_loss=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, query_y = image_episode(4)
    model(inputs)
    assert len(model.step_batch_norm) == 8  # scale and offset of 4 batch-norm layers
    assert all(v.shape == (3, 4) for v in model.step_batch_norm)  # steps + 1 values each
    offset = model.step_batch_norm[1]  # first batch norm's offset, one row per step

    def shift(step):
        values = offset.numpy()
        values[step] += 1.0
        offset.assign(values)

    def changes(step):
        before = model.predict(inputs, verbose=0)
        shift(step)
        return np.abs(model.predict(inputs, verbose=0) - before).max() > 1e-3

    assert changes(2)  # the prediction after 2 steps uses value 2
    model.eval_inner_steps = 1
    assert not changes(2)  # ... which a 1-step prediction never reads
    assert changes(1) and changes(0)
    model.fit(inputs, query_y, epochs=3, verbose=0)
    values = model.step_batch_norm[0].numpy()
    assert np.abs(values[0] - values[1]).max() > 1e-4  # each step's value is learned separately


def test_save_and_load_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = km.MAMLPlusPlus(km.learners.conv4(ways=3, filters=4), inner_lr=0.4, inner_steps=2,
                            first_order_epochs=1, multi_step_loss_epochs=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, query_y = image_episode(5)
    model.fit(inputs, query_y, epochs=2, verbose=0)
    model.save(tmp_path / "mamlpp.keras")
    loaded = keras.saving.load_model(tmp_path / "mamlpp.keras")
    assert type(loaded) is km.MAMLPlusPlus and int(loaded.epoch.numpy()) == 1
    np.testing.assert_array_equal(model.predict(inputs, verbose=0), loaded.predict(inputs, verbose=0))
    np.testing.assert_array_equal(model.inner_rates.numpy(), loaded.inner_rates.numpy())
