"""Every execution path of the gradient-based engine gives the same meta-loss
and meta-gradients, the train step traces once, and its graph does not grow
with the meta-batch size."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from tests.test_maml import image_episode

CONFIGURATIONS = {
    "MAML": (km.MAML, {"inner_lr": 0.3, "inner_steps": 2}),
    "FOMAML": (km.FOMAML, {"inner_lr": 0.3, "inner_steps": 2}),
    "MetaSGD": (km.MetaSGD, {"inner_lr_init": 0.3, "inner_steps": 2}),
    "ANIL": (km.ANIL, {"inner_lr": 0.3, "inner_steps": 2}),
    "MAML++ all options": (km.MAMLPlusPlus, {"inner_lr": 0.3, "inner_steps": 2}),
    "MAML++ first order, no MSL": (km.MAMLPlusPlus, {
        "inner_lr": 0.3, "inner_steps": 2, "first_order_epochs": 1, "multi_step_loss": False}),
}


def build(cls, options, per_task_gradients, learner):
    model = cls(learner, per_task_gradients=per_task_gradients, **options)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                  if learner.output_shape[-1] > 1 else "mse")
    return model


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_per_task_and_whole_batch_gradients_agree(float64, name):
    cls, options = CONFIGURATIONS[name]
    keras.utils.set_random_seed(3)
    learner = km.learners.conv4(ways=3, filters=4)
    inputs, query_y = image_episode(6)
    inputs = {k: v.astype("float64") if v.dtype == np.float32 else v for k, v in inputs.items()}
    results = []
    for per_task in (True, False):
        model = build(cls, options, per_task, learner)
        model(inputs)
        grads, y_pred, loss = model.meta_gradients(inputs, tf.constant(query_y))
        results.append(([g.numpy() for g in grads], y_pred.numpy(), float(loss)))
    (grads_a, pred_a, loss_a), (grads_b, pred_b, loss_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-10)
    np.testing.assert_allclose(pred_a, pred_b, rtol=1e-10, atol=1e-12)
    assert len(grads_a) == len(grads_b)
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    assert max(np.abs(g).max() for g in grads_a) > 0


class CountingMAML(km.MAML):
    """Counts how often Keras traces the train step (Python runs only then)."""

    traces = 0

    def train_step(self, data):
        CountingMAML.traces += 1
        return super().train_step(data)


def test_no_retracing_after_the_first_step():
    model = CountingMAML(km.learners.mlp(), inner_lr=0.01, inner_steps=2)
    model.compile(optimizer="adam", loss="mse")
    episodes = km.data.sinusoid_episodes(meta_batch_size=5)
    model.fit(episodes, steps_per_epoch=1, epochs=1, verbose=0)
    first_step = CountingMAML.traces
    assert 1 <= first_step <= 2  # TensorFlow may trace twice on its first call
    model.fit(episodes, steps_per_epoch=10, epochs=3, verbose=0)
    assert CountingMAML.traces == first_step


def test_graph_does_not_grow_with_the_meta_batch_size():
    def graph_size(tasks):
        model = km.MAML(km.learners.conv4(ways=3, filters=4), inner_lr=0.4, inner_steps=1)
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        inputs, query_y = image_episode(0, tasks=tasks)
        model(inputs)
        step = tf.function(lambda x, y: model.meta_gradients(x, y)[0])
        graph = step.get_concrete_function(inputs, tf.constant(query_y)).graph.as_graph_def()
        return len(graph.node) + sum(len(f.node_def) for f in graph.library.function)

    assert graph_size(2) == graph_size(16)
