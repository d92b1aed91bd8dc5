"""MAML and FOMAML against an independent NumPy implementation."""

import keras
import numpy as np
import pytest

import keras_meta as km
from tests import numpy_mlp

TASKS, SUPPORT, QUERY = 3, 5, 4


def random_episode(seed, tasks=TASKS, dtype="float64"):
    rng = np.random.default_rng(seed)
    sx = rng.uniform(-2, 2, (tasks, SUPPORT, 1)).astype(dtype)
    qx = rng.uniform(-2, 2, (tasks, QUERY, 1)).astype(dtype)
    sy = np.sin(2 * sx) + rng.normal(0, 0.1, sx.shape).astype(dtype)
    qy = np.sin(2 * qx) + rng.normal(0, 0.1, qx.shape).astype(dtype)
    return {"support_x": sx, "support_y": sy, "query_x": qx}, qy


def tasks_of(inputs, query_y):
    return [
        (inputs["support_x"][t], inputs["support_y"][t], inputs["query_x"][t], query_y[t])
        for t in range(len(query_y))
    ]


def tanh_maml(cls=km.MAML, **kwargs):
    keras.utils.set_random_seed(1)
    learner = km.learners.mlp(hidden=(6, 5), activation="tanh")
    model = cls(learner, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    return model


def meta_gradient(model, inputs, query_y):
    """The meta-gradient that `fit` applies: with SGD(learning_rate=1) one
    `train_on_batch` moves the weights by exactly minus the gradient."""
    before = [w.copy() for w in model.learner.get_weights()]
    model.train_on_batch(inputs, query_y)
    after = model.learner.get_weights()
    return before, [b - a for b, a in zip(before, after)]


@pytest.mark.parametrize("recompute", [False, True], ids=["stored", "recomputed"])
@pytest.mark.parametrize("steps", [1, 2])
def test_second_order_meta_gradient_matches_finite_differences(float64, steps, recompute):
    model = tanh_maml(inner_lr=0.3, inner_steps=steps, recompute_inner_steps=recompute)
    inputs, query_y = random_episode(0)
    theta, grads = meta_gradient(model, inputs, query_y)
    reference = numpy_mlp.finite_difference_grad(theta, tasks_of(inputs, query_y), 0.3, steps)
    for g, r in zip(grads, reference):
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-8)


def test_first_order_gradient_is_query_gradient_at_adapted_weights(float64):
    model = tanh_maml(km.FOMAML, inner_lr=0.3, inner_steps=2)
    inputs, query_y = random_episode(1)
    theta, grads = meta_gradient(model, inputs, query_y)
    expected = [np.zeros_like(p) for p in theta]
    for sx, sy, qx, qy in tasks_of(inputs, query_y):
        adapted = numpy_mlp.adapt(theta, sx, sy, 0.3, 2)
        for e, g in zip(expected, numpy_mlp.mse_grad(adapted, qx, qy)):
            e += g / TASKS
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-12)
    second_order = numpy_mlp.finite_difference_grad(theta, tasks_of(inputs, query_y), 0.3, 2)
    assert max(np.abs(g - s).max() for g, s in zip(grads, second_order)) > 1e-4


def test_zero_inner_steps_is_supervised_training_on_the_query_set(float64):
    model = tanh_maml(inner_lr=0.3, inner_steps=0)
    inputs, query_y = random_episode(2)
    plain = keras.models.clone_model(model.learner)
    plain.set_weights(model.learner.get_weights())
    plain.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss="mse")
    model.train_on_batch(inputs, query_y)
    plain.train_on_batch(inputs["query_x"].reshape(-1, 1), query_y.reshape(-1, 1))
    for m, p in zip(model.learner.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(m, p, rtol=1e-12, atol=1e-14)


def test_predict_adapts_with_eval_inner_steps(float64):
    model = tanh_maml(inner_lr=0.3, inner_steps=1, eval_inner_steps=3)
    inputs, query_y = random_episode(3)
    theta = model.learner.get_weights()
    predictions = model.predict(inputs, verbose=0)
    for t, (sx, sy, qx, _) in enumerate(tasks_of(inputs, query_y)):
        expected, _ = numpy_mlp.forward(numpy_mlp.adapt(theta, sx, sy, 0.3, 3), qx)
        np.testing.assert_allclose(predictions[t], expected, rtol=1e-10, atol=1e-12)
    model.eval_inner_steps = 0
    np.testing.assert_allclose(
        model.predict(inputs, verbose=0)[0], numpy_mlp.forward(theta, inputs["query_x"][0])[0],
        rtol=1e-10)


def image_episode(seed, tasks=2, ways=3, shots=2, queries=2):
    rng = np.random.default_rng(seed)
    inputs = {
        "support_x": rng.uniform(0, 1, (tasks, ways * shots, 28, 28, 1)).astype("float32"),
        "support_y": np.tile(np.repeat(np.arange(ways), shots), (tasks, 1)).astype("int32"),
        "query_x": rng.uniform(0, 1, (tasks, ways * queries, 28, 28, 1)).astype("float32"),
    }
    query_y = np.tile(np.repeat(np.arange(ways), queries), (tasks, 1)).astype("int32")
    return inputs, query_y


def conv4_maml(**kwargs):
    keras.utils.set_random_seed(0)
    model = km.MAML(km.learners.conv4(ways=3, filters=8), inner_lr=0.4, **kwargs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def test_predict_and_evaluate_leave_every_learner_weight_unchanged():
    model = conv4_maml(inner_steps=1, eval_inner_steps=3)
    inputs, query_y = image_episode(0)
    before = [w.copy() for w in model.learner.get_weights()]
    model.predict(inputs, verbose=0)
    model.evaluate(inputs, query_y, verbose=0)
    model(inputs)
    for b, a in zip(before, model.learner.get_weights()):
        np.testing.assert_array_equal(b, a)


def test_fit_updates_initial_weights_but_never_batch_norm_statistics():
    model = conv4_maml(inner_steps=1)
    inputs, query_y = image_episode(1)
    bn_stats = [v.numpy().copy() for v in model.learner.non_trainable_variables]
    kernel = model.learner.trainable_variables[0].numpy().copy()
    model.fit(inputs, query_y, epochs=2, verbose=0)
    assert np.abs(model.learner.trainable_variables[0].numpy() - kernel).max() > 0
    for b, v in zip(bn_stats, model.learner.non_trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())


def test_tasks_are_independent_of_each_other():
    """Batch norm and adaptation of one task never see another task."""
    model = conv4_maml(inner_steps=2)
    inputs, _ = image_episode(2, tasks=3)
    together = model.predict(inputs, verbose=0)
    for t in range(3):
        alone = model({k: v[t:t + 1] for k, v in inputs.items()})
        np.testing.assert_allclose(together[t], np.asarray(alone)[0], rtol=1e-4, atol=1e-5)


def test_save_and_load_round_trip_gives_identical_predictions(tmp_path):
    model = conv4_maml(inner_steps=1, eval_inner_steps=2, first_order=True,
                       recompute_inner_steps=True, parallel_tasks=3)
    inputs, query_y = image_episode(3)
    model.fit(inputs, query_y, epochs=1, verbose=0)
    path = tmp_path / "maml.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is km.MAML
    assert (loaded.inner_lr, loaded.inner_steps, loaded.eval_inner_steps, loaded.first_order,
            loaded.recompute_inner_steps, loaded.parallel_tasks) == (0.4, 1, 2, True, True, 3)
    np.testing.assert_array_equal(model.predict(inputs, verbose=0), loaded.predict(inputs, verbose=0))
    fomaml = tanh_maml(km.FOMAML, inner_lr=0.1)
    fomaml.predict(random_episode(0, dtype="float32")[0], verbose=0)
    fomaml.save(tmp_path / "fomaml.keras")
    assert type(keras.saving.load_model(tmp_path / "fomaml.keras")) is km.FOMAML


def test_subclassed_learner_works():
    class TwoLayer(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = keras.layers.Dense(8, activation="tanh")
            self.out = keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.hidden(x))

    model = km.MAML(TwoLayer(), inner_lr=0.1)
    model.compile(optimizer="adam", loss="mse")
    inputs, query_y = random_episode(4, dtype="float32")
    history = model.fit(inputs, query_y, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert model.predict(inputs, verbose=0).shape == (TASKS, QUERY, 1)


def test_predictions_per_step_follow_the_adaptation(float64):
    model = tanh_maml(inner_lr=0.3, inner_steps=1)
    inputs, query_y = random_episode(14)
    model(inputs)
    theta = model.learner.get_weights()
    per_step = model.predictions_per_step(
        inputs["support_x"], inputs["support_y"], inputs["query_x"], steps=3).numpy()
    assert per_step.shape == (TASKS, 4, QUERY, 1)
    for t, (sx, sy, qx, _) in enumerate(tasks_of(inputs, query_y)):
        for k in range(4):
            expected = numpy_mlp.forward(numpy_mlp.adapt(theta, sx, sy, 0.3, k), qx)[0]
            np.testing.assert_allclose(per_step[t, k], expected, rtol=1e-10, atol=1e-12)


