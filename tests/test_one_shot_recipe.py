"""The one-shot recipe's pieces against independent computations: ProtoNet's
transductive refinement (NumPy soft k-means), its learned scale (finite
differences), and Omniglot at a stroke-preserving resolution (the PNG's own
pixels)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from tests.test_metric import CROSSENTROPY, dense_embedding, embed, episode, numpy_prototypes


def numpy_refined(support, labels, query, ways, steps, scale):
    """Ren et al.'s soft k-means refinement of one task's prototypes, `[W, D]`."""
    prototypes = numpy_prototypes(support, labels, ways)
    one_hot = np.eye(ways)[labels]                                        # [S, W]
    for _ in range(steps):
        logits = -scale * ((query[:, None, :] - prototypes[None]) ** 2).sum(-1)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)   # [Q, W]
        prototypes = ((one_hot.T @ support + p.T @ query)
                      / (one_hot.sum(0) + p.sum(0))[:, None])
    return prototypes


@pytest.mark.parametrize("steps", [1, 3])
def test_refined_prototypes_are_soft_k_means_of_support_and_queries(steps):
    inputs, _ = episode(tasks=2, ways=3, shots=2, queries=4)
    model = km.ProtoNet(dense_embedding(), refinement_steps=steps, scale=0.5)
    logits = model.predict(inputs, verbose=0)
    support, query = embed(model, inputs["support_x"]), embed(model, inputs["query_x"])
    for t in range(2):
        prototypes = numpy_refined(support[t], inputs["support_y"][t], query[t], 3, steps, 0.5)
        expected = -0.5 * ((query[t][:, None, :] - prototypes[None]) ** 2).sum(-1)
        np.testing.assert_allclose(logits[t], expected, rtol=1e-4, atol=1e-4)
    plain = km.ProtoNet(model.embedding, scale=0.5).predict(inputs, verbose=0)
    assert np.abs(plain - logits).max() > 1e-3  # the refinement changes the logits


def test_learned_scale_gradient_matches_finite_differences(float64):
    inputs, query_y = episode(tasks=2, ways=3, shots=1, queries=2)
    inputs = {k: v.astype("float64") if v.dtype == np.float32 else v for k, v in inputs.items()}
    model = km.ProtoNet(dense_embedding(), learn_scale=True, scale=0.3, refinement_steps=1)
    crossentropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # in float64

    def loss():
        return crossentropy(query_y, model(inputs, training=False))

    with tf.GradientTape() as tape:
        value = loss()
    gradient = tape.gradient(value, model.log_scale)
    start, h = model.log_scale.numpy(), 1e-6
    differences = []
    for sign in (1, -1):
        model.log_scale.assign(start + sign * h)
        differences.append(float(loss()))
    model.log_scale.assign(start)
    np.testing.assert_allclose(float(gradient), (differences[0] - differences[1]) / (2 * h),
                               rtol=1e-6)
    np.testing.assert_allclose(float(model.logit_scale()), 0.3, rtol=1e-6)
    assert abs(float(gradient)) > 1e-4


def test_fit_moves_the_learned_scale_and_saving_keeps_it(tmp_path):
    inputs, query_y = episode(tasks=2, ways=3, shots=2, queries=2)
    model = km.ProtoNet(dense_embedding(), learn_scale=True, refinement_steps=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=CROSSENTROPY)
    before = float(model.log_scale.numpy())
    model.fit(inputs, query_y, epochs=2, verbose=0)
    assert float(model.log_scale.numpy()) != before
    assert "log_scale" in [w.path.split("/")[-1] for w in model.trainable_weights]
    model.save(tmp_path / "protonet.keras")
    loaded = keras.saving.load_model(tmp_path / "protonet.keras")
    assert loaded.learn_scale and loaded.refinement_steps == 2
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0),
                               model.predict(inputs, verbose=0), rtol=1e-6, atol=1e-6)


def test_eval_refinement_steps_refine_only_outside_training():
    inputs, query_y = episode(tasks=2, ways=3, shots=2, queries=3)
    model = km.ProtoNet(dense_embedding(), refinement_steps=0, eval_refinement_steps=3,
                        scale=0.5)
    refined = km.ProtoNet(model.embedding, refinement_steps=3, scale=0.5)
    np.testing.assert_allclose(model.predict(inputs, verbose=0),
                               refined.predict(inputs, verbose=0), rtol=1e-6, atol=1e-6)
    support, query = embed(model, inputs["support_x"]), embed(model, inputs["query_x"])
    losses = []
    for t in range(2):  # NumPy's crossentropy with the unrefined prototypes
        prototypes = numpy_prototypes(support[t], inputs["support_y"][t], 3)
        logits = -0.5 * ((query[t][:, None, :] - prototypes[None]) ** 2).sum(-1)
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        losses.append(-log_p[np.arange(len(query_y[t])), query_y[t]])
    training_loss = CROSSENTROPY(query_y, model(inputs, training=True))
    np.testing.assert_allclose(float(training_loss), np.mean(losses), rtol=1e-5)
    eval_loss = CROSSENTROPY(query_y, model(inputs, training=False))
    assert abs(float(eval_loss) - float(training_loss)) > 1e-4  # refined outside training
    config = model.get_config()
    assert (config["refinement_steps"], config["eval_refinement_steps"]) == (0, 3)
    assert km.ProtoNet(dense_embedding(), refinement_steps=2).eval_refinement_steps == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(learn_scale=1), "learn_scale"),
    (dict(eval_refinement_steps=-1), "eval_refinement_steps"),
    (dict(eval_refinement_steps=2.0), "eval_refinement_steps"),
    (dict(refinement_steps=-1), "refinement_steps"),
    (dict(refinement_steps=1.5), "refinement_steps"),
])
def test_bad_recipe_arguments_name_the_argument(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        km.ProtoNet(dense_embedding(), **kwargs)


def test_full_resolution_keeps_the_drawings_own_pixels(omniglot_reference):
    drawings = omniglot_reference["image"][:3]                   # uint8 [3, 105, 105, 3]
    full = km.data.omniglot_preprocess(drawings, image_size=105).numpy()
    np.testing.assert_allclose(full, 1.0 - drawings.mean(-1, keepdims=True) / 255.0, atol=1e-6)
    assert km.data.omniglot_preprocess(drawings, image_size=56).shape == (3, 56, 56, 1)
    with pytest.raises(ValueError, match="image_size"):
        km.data.omniglot_preprocess(drawings, image_size=0)


def test_episodes_at_a_larger_size_hold_the_drawings_at_that_size(omniglot_data_dir,
                                                                  omniglot_reference):
    stream = km.data.omniglot_episodes("test", ways=3, shots=1, query_shots=1,
                                       meta_batch_size=2, image_size=56,
                                       data_dir=omniglot_data_dir)
    inputs, _ = next(iter(stream))
    assert inputs["support_x"].shape == (2, 3, 56, 56, 1)
    candidates = km.data.omniglot_preprocess(omniglot_reference["image"], image_size=56).numpy()
    flat = candidates.reshape(len(candidates), -1)
    for image in inputs["support_x"].numpy().reshape(-1, 56 * 56):
        assert np.abs(flat - image).max(axis=1).min() < 1e-5  # one of the test drawings
    with pytest.raises(ValueError, match="image_size"):
        km.data.omniglot_episodes("test", image_size="56")
