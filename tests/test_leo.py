"""LEO: shapes of codes and generated weights, the latent inner loop lowers
the support loss, the KL and orthogonality terms against hand computations,
the meta-loss against its parts, frozen embeddings, save/load and tracing."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta.algorithms import embedding_model, leo
from tests import algorithm_zoo as zoo

LATENT = 6
FEATURES = 64  # zoo.embedding(): 4 × 4 × 4


def small_leo(**kwargs):
    keras.utils.set_random_seed(0)
    return km.LEO(zoo.embedding(), latent_size=LATENT, **kwargs)


def predict(model, inputs):
    return model(inputs).numpy()


def features(model, inputs):
    support, query = model.embed(tf.constant(inputs["support_x"]), tf.constant(inputs["query_x"]))
    return embedding_model.flatten_examples(support), embedding_model.flatten_examples(query)


@pytest.mark.parametrize("ways", [3, 5])
def test_shapes_of_codes_and_generated_weights(ways):
    model = small_leo(inner_steps=2, finetune_steps=3)
    inputs, _ = zoo.episodes(tasks=2, ways=ways, shots=2, queries=3)
    assert predict(model, inputs).shape == (2, 3 * ways, ways)
    support, _ = features(model, inputs)
    support_y = tf.constant(inputs["support_y"])
    mean, stddev = model.encode(support, support_y)
    assert mean.shape == stddev.shape == (2, ways, LATENT)
    assert np.all(stddev.numpy() > 0)
    trajectory = model.adapt_latents(mean, support, support_y)
    assert len(trajectory) == 3 and all(z.shape == (2, ways, LATENT) for z in trajectory)
    weights = model.decode(trajectory[-1])
    assert weights.shape == (2, ways, FEATURES)
    assert model.finetune(weights, support, support_y).shape == (2, ways, FEATURES)
    assert model.inner_rates.shape == (LATENT,) and model.finetune_rates.shape == (FEATURES,)
    assert model.decoder.kernel.shape == (LATENT, 2 * FEATURES)


def test_latent_inner_loop_lowers_the_support_loss():
    model = small_leo(inner_steps=5)
    inputs, _ = zoo.episodes(tasks=4, seed=1)
    model(inputs)
    support, _ = features(model, inputs)
    support_y = tf.constant(inputs["support_y"])
    mean, _ = model.encode(support, support_y)
    trajectory = model.adapt_latents(mean, support, support_y)
    losses = [float(leo.support_loss(support_y, leo.classify(support, model.decode(z))))
              for z in trajectory]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.8 * losses[0], losses


def test_kl_divergence_by_hand():
    mean = tf.constant([[0.5, -1.0]], tf.float64)
    stddev = tf.constant([[1.0, 2.0]], tf.float64)
    # Element 1: ½(0.25 + 1 − 1) − log 1 = 0.125; element 2: ½(1 + 4 − 1) − log 2.
    expected = (0.125 + 2.0 - math.log(2.0)) / 2
    assert float(leo.kl_divergence(mean, stddev)) == pytest.approx(expected, rel=1e-14)
    # Monte Carlo: E_q[log q(z) − log p(z)] for the same Gaussians.
    rng = np.random.default_rng(0)
    z = mean.numpy() + stddev.numpy() * rng.standard_normal((400_000, 2))
    log_q = -0.5 * ((z - mean.numpy()) / stddev.numpy()) ** 2 - np.log(stddev.numpy())
    log_p = -0.5 * z**2
    assert np.mean(log_q - log_p) == pytest.approx(expected, rel=0.01)
    assert float(leo.kl_divergence(tf.zeros([3, 4]), tf.ones([3, 4]))) == 0.0


def test_orthogonality_by_hand():
    # Rows (1, 0) and (1, 1): correlation 1/√2 off the diagonal, so the mean
    # squared difference from the identity is 2 · ½ / 4.
    kernel = tf.constant([[1.0, 0.0], [1.0, 1.0]], tf.float64)
    assert float(leo.orthogonality(kernel)) == pytest.approx(0.25, rel=1e-14)
    rotation = np.array([[0.6, -0.8, 0.0], [0.8, 0.6, 0.0]])
    assert float(leo.orthogonality(tf.constant(rotation * [[3.0], [0.5]]))) == pytest.approx(
        0.0, abs=1e-15)  # orthogonal rows, any lengths
    parallel = tf.constant([[1.0, 2.0], [-2.0, -4.0]], tf.float64)  # correlation −1
    assert float(leo.orthogonality(parallel)) == pytest.approx(0.5, rel=1e-14)


def test_meta_loss_is_the_query_loss_plus_the_regularisers():
    model = small_leo(kl_weight=0.0, encoder_penalty_weight=0.0, l2_penalty_weight=0.01,
                      orthogonality_penalty_weight=0.5, inner_steps=2, finetune_steps=2)
    model.compile(loss=zoo.CROSSENTROPY)
    inputs, query_y = zoo.episodes()
    model(inputs)
    y_pred, loss = model.meta_loss(inputs, tf.constant(query_y))
    kernels = [model.encoder.kernel, *(l.kernel for l in model.relation_network.layers),
               model.decoder.kernel]
    l2 = sum(np.sum(k.numpy().astype(np.float64) ** 2) for k in kernels)
    d = model.decoder.kernel.numpy().astype(np.float64)
    norms = np.linalg.norm(d, axis=1)
    correlation = d @ d.T / np.outer(norms, norms)
    orthogonality = np.mean((correlation - np.eye(len(d))) ** 2)
    query_loss = float(zoo.CROSSENTROPY(query_y, y_pred))
    assert float(loss) == pytest.approx(query_loss + 0.01 * l2 + 0.5 * orthogonality, rel=1e-5)

    logits, kl, encoder_penalty = model.forward(
        *(tf.constant(inputs[k]) for k in ("support_x", "support_y", "query_x")))
    support, _ = features(model, inputs)
    mean, stddev = model.encode(support, tf.constant(inputs["support_y"]))
    assert float(kl) == pytest.approx(float(leo.kl_divergence(mean, stddev)), rel=1e-6)
    assert float(encoder_penalty) > 0


def test_frozen_embedding_stays_fixed_while_leo_trains():
    model = small_leo(inner_steps=1, finetune_steps=1)
    model.embedding.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=zoo.CROSSENTROPY)
    inputs, query_y = zoo.episodes()
    model(inputs)
    embedding_before = [w.copy() for w in model.embedding.get_weights()]
    decoder_before = model.decoder.kernel.numpy().copy()
    model.fit(zoo.episode_dataset(3), epochs=1, verbose=0)
    for before, after in zip(embedding_before, model.embedding.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert np.abs(model.decoder.kernel.numpy() - decoder_before).max() > 0


@pytest.mark.parametrize("name, value, match", [
    ("latent_size", 0, "`latent_size` must be an int >= 1"),
    ("inner_steps", -1, "`inner_steps` must be an int >= 0"),
    ("kl_weight", -0.1, "`kl_weight` must be a finite number >= 0"),
])
def test_bad_arguments(name, value, match):
    with pytest.raises(ValueError, match=match):
        km.LEO(zoo.embedding(), **{name: value})


def test_save_load_and_traced_predictions(tmp_path):
    model = small_leo(inner_steps=2, finetune_steps=2)
    inputs, _ = zoo.episodes(tasks=3, ways=4, shots=1, queries=2, seed=5)
    expected = predict(model, inputs)
    np.testing.assert_array_equal(predict(model, inputs), expected)  # no sampling outside fit
    model.save(tmp_path / "leo.keras")
    loaded = keras.saving.load_model(tmp_path / "leo.keras")
    assert type(loaded) is km.LEO and loaded.latent_size == LATENT
    np.testing.assert_array_equal(predict(loaded, inputs), expected)
    spec = {"support_x": tf.TensorSpec([None, None, *zoo.IMAGE]),
            "support_y": tf.TensorSpec([None, None], tf.int32),
            "query_x": tf.TensorSpec([None, None, *zoo.IMAGE])}
    traced = tf.function(lambda x: loaded(x), input_signature=[spec])
    np.testing.assert_allclose(traced(inputs).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_training_noise_is_keyed_by_the_meta_iteration():
    model = small_leo(inner_steps=1, finetune_steps=1)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=zoo.CROSSENTROPY)
    inputs, _ = zoo.episodes()
    tensors = [tf.constant(inputs[k]) for k in ("support_x", "support_y", "query_x")]
    model(inputs)
    first = model.forward(*tensors, training=True)[0].numpy()
    np.testing.assert_array_equal(model.forward(*tensors, training=True)[0].numpy(), first)
    model.optimizer.iterations.assign(1)
    assert np.abs(model.forward(*tensors, training=True)[0].numpy() - first).max() > 1e-4
