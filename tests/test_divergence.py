"""NaN and divergence: a diverging inner loop stops training with a
`FloatingPointError` naming `inner_lr`, the inner step and the
meta-iteration, before any weight is written; non-finite episode values are
bad input (`ValueError`); inner (`inner_clipnorm`) and outer (the
optimizer's `clipnorm`) gradient clipping."""

import functools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta import adaptation, evaluation, update_rules

STREAM = km.data.sinusoid_episodes(shots=5, query_shots=5, meta_batch_size=4, seed=0)


def sinusoid_maml(optimizer="adam", run_eagerly=False, **kwargs):
    """A built, compiled MAML on sinusoids (its optimizer built too)."""
    keras.utils.set_random_seed(0)
    model = km.MAML(km.learners.mlp(hidden=(16, 16)), **{"inner_lr": 0.01, **kwargs})
    model.compile(optimizer=optimizer, loss="mse", run_eagerly=run_eagerly)
    model.build({key: value.shape for key, value in STREAM.element_spec[0].items()})
    model.optimizer.build(model.trainable_variables)
    return model


def state(model):
    """Every weight and optimizer variable, as NumPy arrays."""
    return [np.array(v) for v in model.weights + model.optimizer.variables]


def assert_unchanged(model, before):
    assert len(state(model)) == len(before)
    for got, want in zip(state(model), before):
        np.testing.assert_array_equal(got, want)
        assert np.all(np.isfinite(got))


def test_diverging_inner_loop_stops_fit_before_any_update():
    model = sinusoid_maml(inner_steps=3)
    model.fit(STREAM, steps_per_epoch=3, verbose=0)
    before = state(model)
    model.inner_lr = 1e4  # a schedule gone wrong; the next fit re-traces the train step
    model.train_function = None
    with pytest.raises(FloatingPointError, match=r"^Meta-iteration 4: the inner loop diverged at "
                                                 r"inner step [1-3] of 3: .*Lower `inner_lr`"):
        model.fit(STREAM.skip(3), steps_per_epoch=3, verbose=0)
    assert_unchanged(model, before)


def test_one_step_blow_up_is_caught_on_the_meta_gradient():
    model = sinusoid_maml(inner_lr=1e30, inner_steps=1)
    before = state(model)
    with pytest.raises(FloatingPointError, match=r"^Meta-iteration 1: the meta-loss or the "
                                                 r"meta-gradient is not finite.*`inner_lr`"):
        model.fit(STREAM, steps_per_epoch=2, verbose=0)
    assert_unchanged(model, before)


def test_evaluation_with_a_diverging_inner_loop_raises():
    model = sinusoid_maml(inner_lr=1e3, inner_steps=1, eval_inner_steps=6)
    inputs, query_y = next(iter(STREAM))
    for run in (lambda: model.evaluate(inputs, query_y, verbose=0),
                lambda: model.predict(inputs, verbose=0), lambda: model(inputs)):
        with pytest.raises(FloatingPointError, match=r"inner step [1-6] of 6"):
            run()


def test_evaluation_can_count_diverged_tasks_and_report_the_others():
    """Tasks 0 and 2 have targets 10⁴ times larger: their inner loop diverges
    at lr 0.1 while the others' does not. Recorded, they are counted and left
    out; the others' results equal an evaluation of those tasks alone."""
    model = sinusoid_maml(inner_lr=0.1, eval_inner_steps=8)
    inputs, query_y = (tf.nest.map_structure(np.array, part) for part in next(iter(STREAM)))
    inputs["support_y"][[0, 2]] *= 1e4
    with pytest.raises(FloatingPointError, match="inner step"):
        evaluation.evaluate_tasks(model, [(inputs, query_y)], num_tasks=4)

    recorded = evaluation.evaluate_tasks(model, [(inputs, query_y)], num_tasks=4,
                                         on_divergence="record")
    np.testing.assert_array_equal(recorded.finite(), [False, True, False, True])
    kept = {key: value[[1, 3]] for key, value in inputs.items()}
    alone = evaluation.evaluate_tasks(model, [(kept, query_y[[1, 3]])], num_tasks=2)
    np.testing.assert_allclose(recorded.loss_per_step[[1, 3]], alone.loss_per_step, rtol=1e-5)
    logs = recorded.summary()
    assert logs["test_diverged_tasks"] == 2 == logs["test_diverged_tasks_step_8"]
    assert logs["test_diverged_tasks_step_0"] == 0
    mean, half_width = km.stats.mean_confidence_interval(alone.loss)
    assert logs["test_loss"] == pytest.approx(mean) and logs["test_loss_ci"] == pytest.approx(
        half_width)
    assert logs["test_loss_step_0"] == pytest.approx(recorded.loss_per_step[:, 0].mean())
    with pytest.raises(ValueError, match="`on_divergence` must be"):
        evaluation.TaskEvaluator(model, on_divergence="ignore")


def test_non_finite_episode_values_are_bad_input():
    model = sinusoid_maml()
    for key in ("support_x", "query_x", "support_y", "query_y"):
        inputs, query_y = (tf.nest.map_structure(np.array, part) for part in next(iter(STREAM)))
        (query_y if key == "query_y" else inputs[key])[1, 2, 0] = np.nan
        with pytest.raises(ValueError, match=f"`{key}` must hold finite values"):
            model.train_on_batch(inputs, query_y)


def test_inner_clipnorm_keeps_a_large_inner_lr_finite():
    model = sinusoid_maml(inner_lr=1e3, inner_steps=5, inner_clipnorm=1e-4)
    model.fit(STREAM, steps_per_epoch=3, verbose=0)
    assert int(model.optimizer.iterations) == 3
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def one_linear_step(clipnorm):
    """One inner step (lr 1) of a linear model `x @ w + b` on fixed data, and the
    plain gradients `[g_w, g_b]` at the start."""
    rng = np.random.default_rng(0)
    x, y = tf.constant(rng.normal(size=(6, 3))), tf.constant(rng.normal(size=(6, 1)))
    weights = [tf.constant(rng.normal(size=(3, 1))), tf.constant([0.5], tf.float64)]

    def loss(w):
        return tf.reduce_mean((x @ w[0] + w[1] - y) ** 2)

    with tf.GradientTape() as tape:
        tape.watch(weights)
        start_loss = loss(weights)
    grads = tape.gradient(start_loss, weights)
    adapted = adaptation.adapt(lambda w, inputs: inputs @ w[0] + w[1],
                               lambda labels, predictions: tf.reduce_mean((predictions - labels) ** 2),
                               weights, x, y, steps=1,
                               rule=update_rules.chain(update_rules.ClipByNorm(clipnorm),
                                                       update_rules.SGD(1.0)))
    return weights, grads, adapted


def test_inner_clipnorm_rescales_each_gradient_to_the_bound():
    weights, grads, adapted = one_linear_step(clipnorm=1e-3)
    for w, g, a in zip(weights, grads, adapted):
        assert np.linalg.norm(g) > 1e-3
        np.testing.assert_allclose(w - a, g * 1e-3 / np.linalg.norm(g), rtol=1e-9)
    weights, grads, adapted = one_linear_step(clipnorm=1e6)  # a bound that does not bind
    for w, g, a in zip(weights, grads, adapted):
        np.testing.assert_allclose(w - a, g, rtol=1e-9)


@pytest.mark.parametrize("cls, kwargs", [
    (km.MAML, {}), (km.FOMAML, {}), (km.Reptile, {}), (km.MetaSGD, {}), (km.ANIL, {}),
    (km.MAMLPlusPlus, {"inner_steps": 2})])
def test_inner_clipnorm_is_configured_and_saved(cls, kwargs):
    model = cls(km.learners.mlp(hidden=(4,)), inner_clipnorm=0.5, **kwargs)
    assert model.inner_clipnorm == 0.5
    assert cls.from_config(model.get_config()).inner_clipnorm == 0.5


@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf, "1", True])
def test_bad_inner_clipnorm(value):
    with pytest.raises(ValueError, match="`inner_clipnorm` must be None or a finite number > 0"):
        km.MAML(km.learners.mlp(), inner_clipnorm=value)


@functools.cache
def outer_update(**clipping):
    """The change of every trainable weight after one meta-iteration of SGD(1.0, **clipping)."""
    model = sinusoid_maml(optimizer=keras.optimizers.SGD(1.0, **clipping), run_eagerly=True)
    before = [v.numpy() for v in model.trainable_variables]
    model.train_on_batch(*next(iter(STREAM)))
    return [v.numpy() - b for v, b in zip(model.trainable_variables, before)]


def test_optimizer_clipnorm_clips_each_meta_gradient():
    plain, clipped = outer_update(), outer_update(clipnorm=0.05)
    assert sum(np.linalg.norm(d) > 0.05 for d in plain) >= 2  # the bound binds
    for p, c in zip(plain, clipped):
        scale = min(1.0, 0.05 / np.linalg.norm(p))
        np.testing.assert_allclose(c, p * scale, rtol=1e-4, atol=1e-7)


def test_optimizer_global_clipnorm_clips_the_whole_meta_gradient():
    plain, clipped = outer_update(), outer_update(global_clipnorm=0.05)
    norm = np.sqrt(sum(np.sum(d ** 2) for d in plain))
    assert norm > 0.05
    for p, c in zip(plain, clipped):
        np.testing.assert_allclose(c, p * 0.05 / norm, rtol=1e-4, atol=1e-7)
