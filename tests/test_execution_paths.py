"""Every execution path of the gradient-based engine gives the same meta-loss
and meta-gradients (per-task or whole-batch gradients, stored or recomputed
inner steps, any number of tasks in flight), the train step traces once, and
its graph grows neither with the meta-batch size nor with the inner steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta import adaptation, update_rules
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


def float64_episode(seed):
    inputs, query_y = image_episode(seed)
    return {k: v.astype("float64") if v.dtype == np.float32 else v
            for k, v in inputs.items()}, tf.constant(query_y)


def meta_gradients_of(cls, learner, weights=None, **options):
    """`(grads, y_pred, loss)` of a fresh model on `float64_episode(6)`, as
    NumPy, and the model; it starts from `weights` when given."""
    model = build(cls, options, options.pop("per_task_gradients", True), learner)
    inputs, query_y = float64_episode(6)
    model(inputs)
    if weights is not None:
        model.set_weights(weights)
    grads, y_pred, loss = tf.function(model.meta_gradients)(inputs, query_y)
    return [g.numpy() for g in grads], y_pred.numpy(), float(loss), model


RECOMPUTED = {**CONFIGURATIONS, "MetaLSTM second order": (
    km.MetaLSTM, {"inner_steps": 2, "first_order": False, "hidden_units": 3})}


# Run by the default suite (the others with -m slow): MAML++ with every option (second
# order, per-step rates and batch-norm weights, the multi-step loss).
RECOMPUTED_DEFAULT = ("MAML++ all options",)


@pytest.mark.parametrize("name", [name if name in RECOMPUTED_DEFAULT else
                                  pytest.param(name, marks=pytest.mark.slow)
                                  for name in RECOMPUTED])
def test_recomputed_inner_steps_give_the_same_meta_gradients(float64, name):
    cls, options = RECOMPUTED[name]
    keras.utils.set_random_seed(4)
    learner = km.learners.conv4(ways=3, filters=4)
    grads_a, pred_a, loss_a, model = meta_gradients_of(cls, learner, **options)
    grads_b, pred_b, loss_b, _ = meta_gradients_of(cls, learner, model.get_weights(),
                                                   recompute_inner_steps=True, **options)
    assert loss_b == pytest.approx(loss_a, rel=1e-12)
    np.testing.assert_allclose(pred_b, pred_a, rtol=1e-12, atol=1e-14)
    assert len(grads_a) == len(grads_b)
    for a, b in zip(grads_a, grads_b):  # meta-parameters (rates, per-step values) included
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    learner_ids = {id(v) for v in learner.trainable_variables}
    meta_parameters = [g for g, v in zip(grads_a, model.trainable_variables)
                       if id(v) not in learner_ids]  # rates, per-step values, the LSTM
    head = next(g for g, v in zip(grads_a, model.trainable_variables)
                if v is learner.trainable_variables[-1])
    assert np.abs(head).max() > 0
    assert all(np.abs(g).max() > 0 for g in meta_parameters)


def test_recomputing_needs_per_task_gradients():
    with pytest.raises(ValueError, match="recompute_inner_steps.*per_task_gradients"):
        km.MAML(km.learners.mlp(), recompute_inner_steps=True, per_task_gradients=False)


@pytest.mark.parametrize("name", ["MAML", pytest.param("MAML++ all options", marks=pytest.mark.slow)])
def test_tasks_in_flight_do_not_change_the_result(float64, name):
    cls, options = CONFIGURATIONS[name]
    keras.utils.set_random_seed(5)
    learner = km.learners.conv4(ways=3, filters=4)
    grads_a, pred_a, loss_a, model = meta_gradients_of(cls, learner, parallel_tasks=1, **options)
    grads_b, pred_b, loss_b, _ = meta_gradients_of(cls, learner, model.get_weights(),
                                                   parallel_tasks=6, **options)
    assert loss_a == loss_b
    np.testing.assert_array_equal(pred_a, pred_b)
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_array_equal(a, b)


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


def meta_gradient_graph_ops(tasks=2, inner_steps=1, **options):
    """Every op (`NodeDef`, functions' included) in the traced meta-gradient
    of a small conv4 MAML (batch norm in each block)."""
    model = km.MAML(km.learners.conv4(ways=3, filters=4), inner_steps=inner_steps, **options)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, query_y = image_episode(0, tasks=tasks)
    model(inputs)
    step = tf.function(lambda x, y: model.meta_gradients(x, y)[0])
    graph = step.get_concrete_function(inputs, tf.constant(query_y)).graph.as_graph_def()
    return [*graph.node, *(node for f in graph.library.function for node in f.node_def)]


def meta_gradient_graph_size(tasks=2, inner_steps=1, **options):
    return len(meta_gradient_graph_ops(tasks, inner_steps, **options))


def test_graph_does_not_grow_with_the_meta_batch_size():
    assert meta_gradient_graph_size(tasks=2) == meta_gradient_graph_size(tasks=16)


@pytest.mark.parametrize("options", [{}, {"inner_rule": update_rules.PerStepRates(steps=5)}])
def test_graph_does_not_grow_with_the_inner_steps(options):
    sizes = [meta_gradient_graph_size(inner_steps=steps, **options) for steps in (1, 2, 5, 10)]
    assert sizes[1] == sizes[2] == sizes[3]
    assert sizes[0] < sizes[1]  # one step runs without the loop


def test_the_task_loop_reads_each_task_without_copying_the_meta_batch():
    """Each iteration gathers its task's slice; `tf.map_fn` over the inputs
    themselves would first unstack (and can copy) the whole meta-batch."""
    unstacked = [node.attr["element_dtype"].type for node in meta_gradient_graph_ops()
                 if node.op == "TensorListFromTensor"]
    assert unstacked == [tf.int32.as_datatype_enum]  # the task indices alone


def test_the_inner_loops_gradient_fills_no_stack_with_zeros():
    """Each iteration of the inner loop's gradient pops one step's saved
    activations; zeros for the rest of a stack (`ZerosLike` of a TensorList)
    would cost memory and time growing with the inner steps."""
    stacks_zeroed = [node.name for node in meta_gradient_graph_ops(inner_steps=3)
                     if node.op == "ZerosLike" and node.attr["T"].type == tf.variant.as_datatype_enum]
    assert stacks_zeroed == []


def test_a_rule_that_asks_for_python_steps_gets_them_unrolled():
    class SizeOfTheFirstStep(update_rules.SGD):
        unrolled = True

        def update(self, grads, state, params, *, step, loss):
            assert isinstance(step, int)
            return update_rules.SGD(self.learning_rate / (step + 1)).update(
                grads, state, params, step=step, loss=loss)

    inputs, _ = image_episode(0, tasks=2)
    learner = km.learners.conv4(ways=3, filters=4)
    unrolled = km.MAML(learner, inner_rule=SizeOfTheFirstStep(0.3), inner_steps=3)
    sizes = update_rules.PerStepRates(steps=3, initial_rate=0.3)
    looped = km.MAML(learner, inner_rule=sizes, inner_steps=3)
    for model in (unrolled, looped):
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    looped(inputs)
    sizes.rates.assign([[0.3, 0.15, 0.1]] * len(learner.trainable_variables))
    np.testing.assert_allclose(unrolled(inputs), looped(inputs), rtol=1e-5, atol=1e-6)
    assert (meta_gradient_graph_size(inner_steps=3, inner_rule=SizeOfTheFirstStep(0.3))
            > meta_gradient_graph_size(inner_steps=1, inner_rule=SizeOfTheFirstStep(0.3)))


@pytest.mark.parametrize("first_order, batch_size, adapted", [
    (False, None, None), (False, 3, [False, True]), (True, 3, None)])
def test_the_loop_and_the_unrolled_steps_give_the_same_meta_gradient(
        first_order, batch_size, adapted):
    rng = np.random.default_rng(0)
    x, y, query_x, query_y = (tf.constant(rng.normal(size=shape))
                              for shape in [(8, 3), (8, 1), (5, 3), (5, 1)])
    theta = [tf.Variable(rng.normal(size=(3, 4))), tf.Variable(rng.normal(size=(4, 1)))]
    rate = tf.Variable(0.2, dtype=tf.float64)

    def forward(weights, inputs):
        return tf.tanh(inputs @ weights[0]) @ weights[1]

    def mse(labels, predictions):
        return tf.reduce_mean((predictions - labels) ** 2)

    @tf.function
    def meta_gradient(trajectory):
        with tf.GradientTape() as tape:
            result = adaptation.adapt(
                forward, mse, [tf.convert_to_tensor(w) for w in theta], x, y, steps=4,
                rule=update_rules.SGD(rate), first_order=first_order, adapted=adapted,
                batch_size=batch_size, trajectory=trajectory)
            loss = mse(query_y, forward(result[-1] if trajectory else result, query_x))
        return tape.gradient(loss, [*theta, rate])

    for looped, unrolled in zip(meta_gradient(False), meta_gradient(True)):
        np.testing.assert_allclose(looped, unrolled, rtol=1e-12, atol=1e-14)
