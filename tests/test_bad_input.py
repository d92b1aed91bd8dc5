"""Bad input raises a ValueError / TypeError that names the argument."""

import math

import keras
import numpy as np
import pytest

import keras_meta as km

WAYS = 3


def episode(tasks=2, shots=2, queries=2, labels=None):
    rng = np.random.default_rng(0)
    support_y = np.tile(np.repeat(np.arange(WAYS), shots), (tasks, 1)).astype("int32")
    if labels is not None:
        support_y[0, 0] = labels
    inputs = {
        "support_x": rng.normal(size=(tasks, WAYS * shots, 4)).astype("float32"),
        "support_y": support_y,
        "query_x": rng.normal(size=(tasks, WAYS * queries, 4)).astype("float32"),
    }
    return inputs, np.tile(np.repeat(np.arange(WAYS), queries), (tasks, 1)).astype("int32")


@pytest.fixture
def model():
    model = km.MAML(km.learners.mlp(hidden=(8,), outputs=WAYS, input_shape=(4,)), inner_lr=0.1)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


@pytest.mark.parametrize("key", ["support_x", "support_y", "query_x"])
def test_missing_key(model, key):
    inputs, _ = episode()
    del inputs[key]
    with pytest.raises(ValueError, match=f"missing key.*{key}"):
        model(inputs)


def test_unknown_key(model):
    inputs, _ = episode()
    inputs["support_labels"] = inputs["support_y"]
    with pytest.raises(ValueError, match="unknown key.*support_labels"):
        model(inputs)


@pytest.mark.parametrize("key", ["support_y", "query_x"])
def test_task_dimensions_disagree(model, key):
    inputs, _ = episode()
    inputs[key] = inputs[key][:1]
    with pytest.raises(ValueError, match=f"`{key}` must have as many tasks.*expected 2, received 1"):
        model(inputs)


def test_support_labels_and_examples_disagree(model):
    inputs, _ = episode()
    inputs["support_y"] = inputs["support_y"][:, :-1]
    with pytest.raises(ValueError, match="`support_y` must have one label per support example"):
        model(inputs)


def test_feature_shapes_disagree(model):
    inputs, _ = episode()
    inputs["query_x"] = inputs["query_x"][..., :3]
    with pytest.raises(ValueError, match="`query_x` feature shape"):
        model(inputs)


def test_integer_images_are_rejected(model):
    inputs, _ = episode()
    inputs["support_x"] = inputs["support_x"].astype("int32")
    with pytest.raises(TypeError, match="`support_x` must be a float tensor"):
        model(inputs)


@pytest.mark.parametrize("label", [WAYS, -1])
def test_support_labels_out_of_range_eager(model, label):
    inputs, _ = episode(labels=label)
    with pytest.raises(ValueError, match=r"`support_y` must hold labels in \[0, 3\)"):
        model(inputs)


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_support_labels_out_of_range_compiled(model, method):
    inputs, query_y = episode(labels=WAYS + 4)
    args = (inputs,) if method == "predict" else (inputs, query_y)
    with pytest.raises(ValueError, match=r"`support_y` must hold labels in \[0, 3\)"):
        getattr(model, method)(*args, verbose=0)


def test_query_labels_out_of_range(model):
    inputs, query_y = episode()
    query_y[1, 2] = 7
    with pytest.raises(ValueError, match=r"`query_y` must hold labels in \[0, 3\)"):
        model.fit(inputs, query_y, verbose=0)


def test_query_targets_disagree_with_query_set(model):
    inputs, query_y = episode()
    with pytest.raises(ValueError, match="`query_y` must have one target per query example"):
        model.train_on_batch(inputs, query_y[:, :-1])


def test_regression_targets_of_wrong_width():
    model = km.MAML(km.learners.mlp(), inner_lr=0.01)
    model.compile(optimizer="adam", loss="mse")
    inputs, _ = next(iter(km.data.sinusoid_episodes(meta_batch_size=2)))
    inputs["support_y"] = np.concatenate([inputs["support_y"]] * 2, axis=-1)
    with pytest.raises(ValueError, match="`support_y` must have 1 target values"):
        model(inputs)


def test_uncompiled_model_explains_what_is_missing():
    model = km.MAML(km.learners.mlp(), inner_lr=0.01)
    inputs, _ = next(iter(km.data.sinusoid_episodes(meta_batch_size=2)))
    with pytest.raises(ValueError, match=r"compile\(loss=...\)"):
        model(inputs)


@pytest.mark.parametrize("argument, value", [
    ("inner_steps", -1), ("inner_steps", 1.5), ("eval_inner_steps", -2),
    ("inner_lr", math.nan), ("inner_lr", math.inf), ("inner_lr", "0.1"),
    ("recompute_inner_steps", 1), ("recompute_inner_steps", "yes"),
    ("parallel_tasks", 0), ("parallel_tasks", 2.0), ("parallel_tasks", True),
])
def test_bad_hyperparameters(argument, value):
    with pytest.raises(ValueError, match=f"`{argument}` must be"):
        km.MAML(km.learners.mlp(), **{argument: value})


def test_learner_must_be_a_keras_model():
    with pytest.raises(TypeError, match="`learner` must be a Keras model"):
        km.MAML(lambda x: x)


def test_fomaml_refuses_second_order():
    with pytest.raises(ValueError, match="`first_order` must be True"):
        km.FOMAML(km.learners.mlp(), first_order=False)


@pytest.mark.parametrize("argument, value", [
    ("shots", 0), ("query_shots", -1), ("meta_batch_size", 2.0),
    ("amplitude_range", (5.0, 0.1)), ("x_range", (0.0, math.inf)), ("seed", "zero"),
])
def test_bad_sinusoid_arguments(argument, value):
    with pytest.raises(ValueError, match=f"`{argument}` must be"):
        km.data.sinusoid_episodes(**{argument: value})


def test_float_class_labels_are_cast_to_int(model):
    inputs, query_y = episode()
    as_floats = dict(inputs, support_y=inputs["support_y"].astype("float32"))
    np.testing.assert_array_equal(model(as_floats), model(inputs))
    inputs, _ = episode(labels=WAYS)
    with pytest.raises(ValueError, match=r"`support_y` must hold labels in \[0, 3\)"):
        model(dict(inputs, support_y=inputs["support_y"].astype("float32")))


@pytest.mark.parametrize("make", [
    lambda: km.MAML(km.learners.mlp(hidden=(8,), outputs=WAYS, input_shape=(4,)), inner_lr=0.1),
    lambda: km.ProtoNet(km.learners.mlp(hidden=(8,), outputs=4, input_shape=(4,))),
])
@pytest.mark.parametrize("method", ["call", "fit"])
def test_fractional_float_labels_are_rejected_not_truncated(make, method):
    model = make()
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, query_y = episode()
    inputs["support_y"] = inputs["support_y"].astype("float32")
    query_y = query_y.astype("float32")
    key = "support_y" if method == "call" else "query_y"
    if key == "support_y":
        inputs["support_y"][0, 1] = 0.5
    else:
        query_y[1, 0] = 1.5
    with pytest.raises(ValueError, match=f"`{key}` must hold whole-number class labels"):
        if method == "call":
            model(inputs)
        else:
            model.fit(inputs, query_y, batch_size=2, epochs=1, verbose=0)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint32", "int64"])
def test_any_integer_label_type_gives_the_int32_predictions(dtype, model):
    for model in (km.MatchingNet(km.learners.mlp(hidden=(8,), outputs=4, input_shape=(4,))),
                  model):
        inputs, _ = episode()
        other = dict(inputs, support_y=inputs["support_y"].astype(dtype))
        np.testing.assert_allclose(model(other), model(inputs), rtol=1e-6)
