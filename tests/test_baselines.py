"""FineTune and MultiTask against independent NumPy computations: head
fitting by gradient descent, whole-network fine-tuning, the multi-task loss;
and the guarantee that every task starts from the same pre-trained body."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from tests import numpy_mlp
from tests.test_metric import CROSSENTROPY, FEATURES, dense_embedding, episode


def numpy_softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numpy_fit_linear_head(features, labels, ways, steps, learning_rate):
    """Gradient descent on the mean cross-entropy of a zero-initialised linear head."""
    kernel, bias = np.zeros((features.shape[1], ways)), np.zeros(ways)
    one_hot = np.eye(ways)[labels]
    for _ in range(steps):
        error = (numpy_softmax(features @ kernel + bias) - one_hot) / len(labels)
        kernel, bias = kernel - learning_rate * features.T @ error, bias - learning_rate * error.sum(0)
    return kernel, bias


def body_features(model, x):
    return model.learner.predict(x.reshape(-1, FEATURES), verbose=0).reshape(*x.shape[:2], -1)


def compiled(model, loss=CROSSENTROPY):
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss, metrics=["accuracy"])
    return model


def test_finetune_fits_a_new_linear_head_by_gradient_descent_on_the_support_features():
    inputs, _ = episode()
    model = compiled(km.baselines.FineTune(dense_embedding(), num_classes=10, steps=5,
                                           learning_rate=0.5))
    logits = model.predict(inputs, verbose=0)
    support, query = body_features(model, inputs["support_x"]), body_features(model, inputs["query_x"])
    for t in range(3):
        kernel, bias = numpy_fit_linear_head(support[t], inputs["support_y"][t], 4, 5, 0.5)
        np.testing.assert_allclose(logits[t], query[t] @ kernel + bias, rtol=1e-4, atol=1e-5)


def test_finetune_leaves_the_body_unchanged_and_starts_every_task_from_it():
    inputs, _ = episode(features=(28, 28, 1))
    model = compiled(km.baselines.FineTune(km.learners.conv4_embedding(filters=8),
                                           num_classes=10, steps=10))
    before = [w.copy() for w in model.get_weights()]
    together = model.predict(inputs, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    for t in range(3):
        alone = model.predict({k: v[t:t + 1] for k, v in inputs.items()}, verbose=0)
        np.testing.assert_allclose(alone[0], together[t], rtol=1e-5, atol=1e-5)
    reordered = model.predict({k: v[::-1] for k, v in inputs.items()}, verbose=0)
    np.testing.assert_allclose(reordered[::-1], together, rtol=1e-5, atol=1e-5)


def test_cosine_head_without_steps_is_a_cosine_prototype_classifier():
    inputs, _ = episode()
    body = dense_embedding()
    baseline_plus_plus = compiled(km.baselines.FineTune(body, num_classes=10, head="cosine",
                                                        steps=0))
    prototypes = km.ProtoNet(body, distance="cosine", scale=km.baselines.COSINE_SCALE)
    np.testing.assert_allclose(baseline_plus_plus.predict(inputs, verbose=0),
                               prototypes.predict(inputs, verbose=0), rtol=1e-5, atol=1e-5)


def test_finetune_pretrains_on_ordinary_batches_of_every_training_class():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, FEATURES)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + 2 * (x[:, 1] > 0).astype("int32")
    model = compiled(km.baselines.FineTune(dense_embedding(), num_classes=4, steps=3))
    before = model.learner.get_weights()
    history = model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x, verbose=0).shape == (64, 4)
    assert not np.allclose(before[0], model.learner.get_weights()[0])
    assert model.predict(episode()[0], verbose=0).shape == (3, 12, 4)


def test_finetune_cannot_pretrain_on_classification_episodes():
    model = compiled(km.baselines.FineTune(dense_embedding(), num_classes=4))
    with pytest.raises(ValueError, match="global class"):
        model.fit(*episode(), verbose=0)


def test_finetune_without_new_head_fine_tunes_the_whole_network_like_numpy():
    rng = np.random.default_rng(0)
    inputs = {"support_x": rng.uniform(-5, 5, (2, 10, 1)).astype("float32"),
              "query_x": rng.uniform(-5, 5, (2, 7, 1)).astype("float32")}
    inputs["support_y"] = np.sin(inputs["support_x"])
    keras.utils.set_random_seed(0)
    model = compiled(km.baselines.FineTune(km.learners.mlp(activation="tanh"), steps=3,
                                           learning_rate=0.05), loss="mse")
    predictions = model.predict(inputs, verbose=0)
    params = [w.astype("float64") for w in model.learner.get_weights()]
    for t in range(2):
        tuned = numpy_mlp.adapt(params, inputs["support_x"][t], inputs["support_y"][t], 0.05, 3)
        expected, _ = numpy_mlp.forward(tuned, inputs["query_x"][t])
        np.testing.assert_allclose(predictions[t], expected, rtol=1e-4, atol=1e-5)


def test_finetune_pretrains_jointly_on_pooled_regression_episodes():
    model = compiled(km.baselines.FineTune(km.learners.mlp(), steps=5, learning_rate=0.01),
                     loss="mse")
    history = model.fit(km.data.sinusoid_episodes(meta_batch_size=10), steps_per_epoch=30,
                        epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    inputs, query_y = next(iter(km.data.sinusoid_episodes(meta_batch_size=4, seed=1)))
    assert model.predict(inputs, verbose=0).shape == (4, 10, 1)


def test_multitask_loss_is_the_joint_loss_of_heads_fitted_to_each_task():
    inputs, query_y = episode()
    model = compiled(km.baselines.MultiTask(dense_embedding(), steps=4, learning_rate=0.5))
    features = np.concatenate([body_features(model, inputs["support_x"]),
                               body_features(model, inputs["query_x"])], axis=1)
    labels = np.concatenate([inputs["support_y"], query_y], axis=1)
    losses = []
    for t in range(3):
        kernel, bias = numpy_fit_linear_head(features[t], labels[t], 4, 4, 0.5)
        probabilities = numpy_softmax(features[t] @ kernel + bias)
        losses.append(-np.log(probabilities[np.arange(len(labels[t])), labels[t]]))
    before = model.learner.get_weights()
    history = model.fit(inputs, query_y, batch_size=3, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(np.mean(losses), rel=1e-4)
    assert not np.allclose(before[0], model.learner.get_weights()[0])


def test_multitask_training_rejects_query_classes_the_support_set_lacks():
    inputs, query_y = episode()
    query_y = np.array(query_y)
    query_y[1, 0] = np.max(inputs["support_y"]) + 1
    model = compiled(km.baselines.MultiTask(dense_embedding(), steps=1))
    with pytest.raises(ValueError, match=r"`query_y` must hold labels in \[0, ways\)"):
        model.train_on_batch(inputs, query_y)


def test_multitask_with_unfitted_heads_has_chance_loss_and_no_gradient():
    inputs, query_y = episode()
    model = compiled(km.baselines.MultiTask(dense_embedding(), steps=0))
    before = model.learner.get_weights()
    history = model.fit(inputs, query_y, batch_size=3, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(math.log(4), rel=1e-6)
    for a, b in zip(before, model.learner.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_multitask_regression_heads():
    body = keras.Sequential([keras.Input((1,)), keras.layers.Dense(16, activation="relu")])
    model = compiled(km.baselines.MultiTask(body, steps=5, learning_rate=0.01), loss="mse")
    model.fit(km.data.sinusoid_episodes(meta_batch_size=4), steps_per_epoch=3, verbose=0)
    inputs, _ = next(iter(km.data.sinusoid_episodes(meta_batch_size=4, seed=1)))
    assert model.predict(inputs, verbose=0).shape == (4, 10, 1)


@pytest.mark.parametrize("name", ["finetune", "finetune_cosine", "multitask"])
def test_fit_then_keras_file_and_saved_model_give_identical_predictions(name, tmp_path):
    inputs, query_y = episode()
    if name == "multitask":
        model = compiled(km.baselines.MultiTask(dense_embedding(), steps=3))
        model.fit(inputs, query_y, epochs=2, verbose=0)
    else:
        head = "cosine" if name == "finetune_cosine" else "linear"
        model = compiled(km.baselines.FineTune(dense_embedding(), num_classes=4, head=head,
                                               steps=3))
        model.fit(inputs["query_x"].reshape(-1, FEATURES), query_y.reshape(-1), epochs=2,
                  verbose=0)
    expected = model.predict(inputs, verbose=0)

    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(reloaded.predict(inputs, verbose=0), expected)

    signature = {"support_x": tf.TensorSpec((None, None, FEATURES), tf.float32),
                 "support_y": tf.TensorSpec((None, None), tf.int32),
                 "query_x": tf.TensorSpec((None, None, FEATURES), tf.float32)}
    model.export(tmp_path / "exported", verbose=False, input_signature=[signature])
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    np.testing.assert_allclose(exported.serve(**inputs).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_heads_are_fitted_with_the_compiled_loss():
    model = km.baselines.FineTune(dense_embedding(), num_classes=4)
    with pytest.raises(ValueError, match="compile"):
        model.predict(episode()[0], verbose=0)


@pytest.mark.parametrize("kwargs, argument", [
    (dict(num_classes=4, head="softmax"), "head"),
    (dict(num_classes=4, steps=-1), "steps"),
    (dict(num_classes=4, learning_rate=0.0), "learning_rate"),
    (dict(num_classes=0), "num_classes"),
    (dict(head="cosine"), "head"),
])
def test_bad_arguments_raise_value_errors_naming_them(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        km.baselines.FineTune(dense_embedding(), **kwargs)


def test_body_must_give_feature_vectors():
    body = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Reshape((2, 3))])
    model = compiled(km.baselines.MultiTask(body))
    with pytest.raises(ValueError, match="learner"):
        model.predict(episode()[0], verbose=0)
