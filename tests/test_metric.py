"""ProtoNet, MatchingNet and RelationNet against independent NumPy
computations, plus invariances, save/load, export and bad arguments."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km

FEATURES = 6


def episode(tasks=3, ways=4, shots=2, queries=3, seed=0, features=(FEATURES,)):
    """A random episode with support labels in a random order per task."""
    rng = np.random.default_rng(seed)
    support_y = np.stack([rng.permutation(np.repeat(np.arange(ways), shots))
                          for _ in range(tasks)]).astype("int32")
    inputs = {
        "support_x": rng.normal(size=(tasks, ways * shots, *features)).astype("float32"),
        "support_y": support_y,
        "query_x": rng.normal(size=(tasks, ways * queries, *features)).astype("float32"),
    }
    query_y = np.tile(np.repeat(np.arange(ways), queries), (tasks, 1)).astype("int32")
    return inputs, query_y


def dense_embedding(size=5, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(size)])


def embed(model, x):
    """NumPy embeddings of `[T, N, FEATURES]` through `model.embedding`."""
    flat = model.embedding.predict(x.reshape(-1, FEATURES), verbose=0)
    return flat.reshape(*x.shape[:2], -1)


def numpy_cosine(a, b):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


CROSSENTROPY = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# ProtoNet ------------------------------------------------------------------

def numpy_prototypes(support, labels, ways):
    return np.stack([support[labels == k].mean(axis=0) for k in range(ways)])


def test_protonet_logits_are_negative_squared_distances_to_prototypes():
    inputs, _ = episode()
    model = km.ProtoNet(dense_embedding())
    logits = model.predict(inputs, verbose=0)
    support, query = embed(model, inputs["support_x"]), embed(model, inputs["query_x"])
    for t in range(3):
        prototypes = numpy_prototypes(support[t], inputs["support_y"][t], 4)
        expected = -((query[t][:, None, :] - prototypes[None]) ** 2).sum(axis=-1)
        np.testing.assert_allclose(logits[t], expected, rtol=1e-4, atol=1e-4)


def test_protonet_cosine_logits_are_scaled_cosines_to_prototypes():
    inputs, _ = episode()
    model = km.ProtoNet(dense_embedding(), distance="cosine", scale=3.0)
    logits = model.predict(inputs, verbose=0)
    support, query = embed(model, inputs["support_x"]), embed(model, inputs["query_x"])
    for t in range(3):
        prototypes = numpy_prototypes(support[t], inputs["support_y"][t], 4)
        np.testing.assert_allclose(logits[t], 3.0 * numpy_cosine(query[t], prototypes),
                                   rtol=1e-5, atol=1e-5)


def test_protonet_prediction_is_invariant_to_permuting_the_support_set():
    inputs, _ = episode(features=(28, 28, 1), shots=3)
    model = km.ProtoNet(km.learners.conv4_embedding(filters=8))
    expected = model.predict(inputs, verbose=0)
    rng = np.random.default_rng(1)
    for _ in range(3):
        order = np.stack([rng.permutation(12) for _ in range(3)])
        permuted = dict(inputs,
                        support_x=np.take_along_axis(inputs["support_x"],
                                                     order[..., None, None, None], axis=1),
                        support_y=np.take_along_axis(inputs["support_y"], order, axis=1))
        np.testing.assert_allclose(model.predict(permuted, verbose=0), expected,
                                   rtol=1e-5, atol=1e-4)


def test_protonet_trained_on_few_ways_serves_more_ways():
    train_inputs, train_y = episode(ways=3)
    model = km.ProtoNet(dense_embedding())
    model.compile(optimizer="adam", loss=CROSSENTROPY, metrics=["accuracy"])
    model.fit(train_inputs, train_y, epochs=2, verbose=0)
    inputs, query_y = episode(ways=7, seed=1)
    assert model.predict(inputs, verbose=0).shape == (3, 21, 7)
    assert np.isfinite(model.evaluate(inputs, query_y, verbose=0)[0])


# MatchingNet ---------------------------------------------------------------

def test_matching_attention_is_a_softmax_over_cosine_similarities():
    inputs, _ = episode()
    model = km.MatchingNet(dense_embedding(), scale=2.0)
    attention = model.attention(inputs["support_x"], inputs["query_x"]).numpy()
    logits = model.predict(inputs, verbose=0)
    support, query = embed(model, inputs["support_x"]), embed(model, inputs["query_x"])
    for t in range(3):
        similarity = 2.0 * numpy_cosine(query[t], support[t])
        expected = np.exp(similarity) / np.exp(similarity).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(attention[t], expected, rtol=1e-5, atol=1e-6)
        per_class = np.stack([expected[:, inputs["support_y"][t] == k].sum(axis=1)
                              for k in range(4)], axis=1)
        np.testing.assert_allclose(logits[t], np.log(per_class), rtol=1e-4, atol=1e-5)


def test_matching_with_one_shot_is_cosine_nearest_neighbour():
    inputs, _ = episode(shots=1, queries=5)
    model = km.MatchingNet(dense_embedding())
    predicted = model.predict(inputs, verbose=0).argmax(axis=-1)
    support, query = embed(model, inputs["support_x"]), embed(model, inputs["query_x"])
    for t in range(3):
        nearest = numpy_cosine(query[t], support[t]).argmax(axis=1)
        np.testing.assert_array_equal(predicted[t], inputs["support_y"][t][nearest])


def test_matching_full_context_embeddings_give_class_distributions_that_depend_on_the_set():
    inputs, _ = episode()
    model = km.MatchingNet(dense_embedding(), full_context_embeddings=True, context_steps=2)
    logits = model.predict(inputs, verbose=0)
    assert logits.shape == (3, 12, 4)
    np.testing.assert_allclose(np.exp(logits).sum(axis=-1), 1.0, rtol=1e-5)
    order = np.arange(8)[::-1]
    reversed_support = dict(inputs, support_x=inputs["support_x"][:, order],
                            support_y=inputs["support_y"][:, order])
    # The bidirectional LSTM reads the support set as a sequence (as in the paper).
    assert not np.allclose(model.predict(reversed_support, verbose=0), logits, atol=1e-6)


# RelationNet ---------------------------------------------------------------

def hand_made_relation_net(objective):
    """Identity embedding of 2-d points; relation logit = [class, query] · w + b."""
    points = keras.Input((2,))
    embedding = keras.Model(points, keras.layers.Identity()(points))
    relation = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    relation.set_weights([np.array([[1.0], [-1.0], [2.0], [0.5]], "float32"),
                          np.array([-1.0], "float32")])
    return km.RelationNet(embedding, relation_module=relation, objective=objective)


HAND_MADE = {
    "support_x": np.array([[[1.0, 0.0], [3.0, 2.0], [0.0, 1.0]]], "float32"),
    "support_y": np.array([[0, 0, 1]], "int32"),
    "query_x": np.array([[[1.0, 1.0], [0.0, -2.0]]], "float32"),
}
HAND_MADE_Y = np.array([[0, 1]], "int32")
# Class features (means): c0 = (2, 1), c1 = (0, 1); c · (1, -1) = 1 and -1.
# Queries: q · (2, 0.5) = 2.5 and -1. Logits = c-part + q-part - 1:
HAND_MADE_LOGITS = np.array([[[2.5, 0.5], [-1.0, -3.0]]])


def test_relation_scores_are_sigmoid_relations_of_class_query_pairs():
    model = hand_made_relation_net("mse")
    scores = model.predict(HAND_MADE, verbose=0)
    assert scores.shape == (1, 2, 2)
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-HAND_MADE_LOGITS)), rtol=1e-5)


def test_relation_mse_loss_on_a_hand_made_case():
    model = hand_made_relation_net("mse")
    model.compile(loss=model.default_loss())
    scores = 1 / (1 + np.exp(-HAND_MADE_LOGITS))
    one_hot = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    expected = np.mean((scores - one_hot) ** 2)
    assert model.evaluate(HAND_MADE, HAND_MADE_Y, verbose=0) == pytest.approx(expected, rel=1e-5)
    loss = km.algorithms.RelationMSE()(np.array([[1, 0]]), np.array([[[0.2, 0.9], [0.6, 0.5]]]))
    assert float(loss) == pytest.approx(((0.2**2 + 0.1**2) / 2 + (0.4**2 + 0.5**2) / 2) / 2)


def test_relation_crossentropy_objective_returns_the_relation_logits():
    model = hand_made_relation_net("crossentropy")
    np.testing.assert_allclose(model.predict(HAND_MADE, verbose=0), HAND_MADE_LOGITS, rtol=1e-5)
    model.compile(loss=model.default_loss())
    log_softmax = HAND_MADE_LOGITS - np.log(np.exp(HAND_MADE_LOGITS).sum(-1, keepdims=True))
    expected = -(log_softmax[0, 0, 0] + log_softmax[0, 1, 1]) / 2
    assert model.evaluate(HAND_MADE, HAND_MADE_Y, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_relation_scores_on_feature_maps_lie_in_the_unit_interval():
    inputs, _ = episode(features=(28, 28, 1))
    model = km.RelationNet(km.learners.conv4_embedding(filters=8, pooled_blocks=2,
                                                       flatten=False))
    scores = model.predict(inputs, verbose=0)
    assert scores.shape == (3, 12, 4)
    assert np.all((scores >= 0) & (scores <= 1))


# Every metric model ---------------------------------------------------------

def all_models():
    return {
        "protonet": (km.ProtoNet(dense_embedding()), CROSSENTROPY),
        "matching": (km.MatchingNet(dense_embedding()), CROSSENTROPY),
        "matching_fce": (km.MatchingNet(dense_embedding(), full_context_embeddings=True),
                         CROSSENTROPY),
        "relation": (hand_made_relation_net("mse"), km.algorithms.RelationMSE()),
    }


@pytest.mark.parametrize("name", ["protonet", "matching", "matching_fce", "relation"])
def test_fit_then_keras_file_and_saved_model_give_identical_predictions(name, tmp_path):
    model, loss = all_models()[name]
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    inputs, query_y = episode()
    if name == "relation":
        inputs = {k: v[..., :2] if k != "support_y" else v for k, v in inputs.items()}
    history = model.fit(inputs, query_y, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    expected = model.predict(inputs, verbose=0)

    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(reloaded.predict(inputs, verbose=0), expected)

    feature_shape = inputs["support_x"].shape[2:]
    signature = {
        "support_x": tf.TensorSpec((None, None, *feature_shape), tf.float32),
        "support_y": tf.TensorSpec((None, None), tf.int32),
        "query_x": tf.TensorSpec((None, None, *feature_shape), tf.float32),
    }
    model.export(tmp_path / "exported", verbose=False, input_signature=[signature])
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    np.testing.assert_allclose(exported.serve(**inputs).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_labels_are_checked():
    inputs, _ = episode()
    model = km.ProtoNet(dense_embedding())
    missing_class = dict(inputs, support_y=np.where(inputs["support_y"] == 2, 3, inputs["support_y"]))
    with pytest.raises(ValueError, match="support_y"):
        model.predict(missing_class, verbose=0)
    negative = dict(inputs, support_y=inputs["support_y"] - 1)
    with pytest.raises(ValueError, match="support_y"):
        model.predict(negative, verbose=0)
    # Class labels given as floats are class labels (Keras's sparse losses accept them too).
    as_floats = dict(inputs, support_y=inputs["support_y"].astype("float32"))
    np.testing.assert_array_equal(model(as_floats), model(inputs))


@pytest.mark.parametrize("make, argument", [
    (lambda e: km.ProtoNet(e, distance="manhattan"), "distance"),
    (lambda e: km.ProtoNet(e, scale=0), "scale"),
    (lambda e: km.MatchingNet(e, context_steps=0), "context_steps"),
    (lambda e: km.MatchingNet(e, scale=-1.0), "scale"),
    (lambda e: km.RelationNet(e, objective="hinge"), "objective"),
    (lambda e: km.RelationNet(e, relation_module="conv"), "relation_module"),
])
def test_bad_arguments_raise_value_errors_naming_them(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make(dense_embedding())


def test_relation_module_must_output_one_logit_per_pair():
    model = km.RelationNet(dense_embedding(), relation_module=keras.Sequential(
        [keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="relation_module"):
        model.predict(episode()[0], verbose=0)


def docstring_example(obj):
    """The first ```python block of `obj`'s docstring, dedented."""
    import textwrap
    block = obj.__doc__.split("```python\n", 1)[1].split("```", 1)[0]
    return textwrap.dedent(block)


def test_metamodel_docstring_example_is_protonet_and_trains_through_the_default_hooks():
    namespace = {"keras_meta": km, "tf": tf}
    exec(docstring_example(km.MetaModel), namespace)
    embedding = dense_embedding()
    nearest_mean = namespace["NearestMean"](embedding)
    inputs, query_y = episode()
    np.testing.assert_allclose(nearest_mean(inputs), km.ProtoNet(embedding)(inputs),
                               rtol=1e-4, atol=1e-4)
    nearest_mean.compile(optimizer=keras.optimizers.SGD(0.05),
                         loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = nearest_mean.evaluate(inputs, query_y, verbose=0)
    nearest_mean.fit(inputs, query_y, batch_size=3, epochs=5, verbose=0)
    assert nearest_mean.evaluate(inputs, query_y, verbose=0) < before


def train_step_result(model, inputs, query_y):
    """`(weights after one SGD(1) step, moving statistics)` of `model`."""
    model.compile(optimizer=keras.optimizers.SGD(1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(inputs, query_y)
    return ([v.numpy() for v in model.trainable_variables],
            [v.numpy() for v in model.non_trainable_variables])


@pytest.mark.parametrize("name", ["ProtoNet", "MatchingNet"])
def test_embedding_per_task_without_batch_norm_gives_the_default_step(name):
    inputs, query_y = episode(tasks=4)
    cls = {"ProtoNet": km.ProtoNet, "MatchingNet": km.MatchingNet}[name]
    default, per_task = (train_step_result(cls(dense_embedding(), embed_per_task=flag),
                                           inputs, query_y)[0] for flag in (False, True))
    for a, b in zip(default, per_task):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    config = cls(dense_embedding(), embed_per_task=True).get_config()
    assert cls.from_config(config).embed_per_task is True


def test_embedding_per_task_with_batch_norm_averages_single_task_steps():
    """Each task normalised by its own statistics: the step equals the mean of
    the default path's steps on each task alone, moving statistics included."""
    inputs, query_y = episode(tasks=3, features=(8, 8, 1))

    def model(embed_per_task):
        keras.utils.set_random_seed(3)
        return km.ProtoNet(km.learners.conv4_embedding(filters=3, input_shape=(8, 8, 1),
                                                      pooled_blocks=2),
                           embed_per_task=embed_per_task)

    weights, moving = train_step_result(model(True), inputs, query_y)
    singles = [train_step_result(model(False), {k: v[t:t + 1] for k, v in inputs.items()},
                                 query_y[t:t + 1]) for t in range(3)]
    for i, value in enumerate(weights):
        np.testing.assert_allclose(value, np.mean([s[0][i] for s in singles], axis=0),
                                   rtol=1e-5, atol=1e-6)
    for i, value in enumerate(moving):
        np.testing.assert_allclose(value, np.mean([s[1][i] for s in singles], axis=0),
                                   rtol=1e-5, atol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(moving, model(False).non_trainable_variables)) > 1e-3
