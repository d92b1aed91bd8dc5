"""SNAIL: causality of the sequence model, queries that never see each other,
the attention block against NumPy, save/load and tracing."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta.algorithms import snail
from tests import algorithm_zoo as zoo


def small_snail():
    keras.utils.set_random_seed(0)
    return km.SNAIL(zoo.embedding(), ways=zoo.WAYS, shots=zoo.SHOTS, filters=8,
                    attention=((8, 4), (4, 6)))


def test_changing_a_later_element_never_changes_an_earlier_output():
    model = small_snail()
    inputs, _ = zoo.episodes()
    model(inputs)
    length, channels = 8, 64 + zoo.WAYS
    sequence = np.random.default_rng(0).normal(size=(2, length, channels)).astype("float32")
    outputs = model.sequence_logits(tf.constant(sequence)).numpy()
    for position in range(length):
        changed = sequence.copy()
        changed[:, position] += 1.0
        new = model.sequence_logits(tf.constant(changed)).numpy()
        np.testing.assert_array_equal(new[:, :position], outputs[:, :position])
        assert np.abs(new[:, position] - outputs[:, position]).min() > 0


def predict(model, inputs):
    return model(inputs).numpy()


def test_queries_do_not_see_each_other():
    model = small_snail()
    inputs, _ = zoo.episodes(queries=3)
    logits = predict(model, inputs)
    changed = {key: value.copy() for key, value in inputs.items()}
    changed["query_x"][:, 4] = np.random.default_rng(1).normal(size=changed["query_x"][:, 4].shape)
    new = predict(model, changed)
    others = [q for q in range(logits.shape[1]) if q != 4]
    np.testing.assert_allclose(new[:, others], logits[:, others], rtol=1e-6, atol=1e-6)
    assert np.abs(new[:, 4] - logits[:, 4]).max() > 1e-4
    alone = dict(inputs, query_x=inputs["query_x"][:, 2:3])  # one query, the same support set
    np.testing.assert_allclose(predict(model, alone)[:, 0], logits[:, 2],
                               rtol=1e-5, atol=1e-6)


def test_attention_block_against_numpy():
    block = snail.CausalAttentionBlock(key_size=3, value_size=2)
    x = np.random.default_rng(2).normal(size=(2, 5, 4))
    output = block(tf.constant(x, tf.float32)).numpy()
    (wq, bq), (wk, bk), (wv, bv) = (layer.get_weights() for layer in
                                    (block.query_layer, block.key_layer, block.value_layer))
    q, k, v = x @ wq + bq, x @ wk + bk, x @ wv + bv
    for t in range(5):
        logits = q[:, t:t + 1] @ k[:, :t + 1].transpose(0, 2, 1) / np.sqrt(3)   # [B, 1, t + 1]
        weights = np.exp(logits - logits.max(-1, keepdims=True))
        read = (weights / weights.sum(-1, keepdims=True)) @ v[:, :t + 1]
        np.testing.assert_allclose(output[:, t, 4:], read[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(output[..., :4], x.astype("float32"))


def test_tc_block_covers_the_sequence():
    assert snail.dilations(1) == [1]
    assert snail.dilations(6) == [1, 2, 4]
    assert snail.dilations(26) == [1, 2, 4, 8, 16]


def test_labels_outside_the_ways_and_bad_arguments():
    model = small_snail()
    inputs, _ = zoo.episodes(ways=zoo.WAYS + 1)
    with pytest.raises(ValueError, match=r"`support_y` must hold labels in \[0, 3\)"):
        model(inputs)
    with pytest.raises(ValueError, match="`attention` must be a non-empty list"):
        km.SNAIL(zoo.embedding(), attention=[(8,)])
    with pytest.raises(ValueError, match="`ways` must be an int >= 1"):
        km.SNAIL(zoo.embedding(), ways=0)


def test_save_load_and_traced_predictions(tmp_path):
    model = small_snail()
    inputs, _ = zoo.episodes(tasks=3, shots=1, queries=2, seed=5)
    model(inputs)
    model.save(tmp_path / "snail.keras")
    loaded = keras.saving.load_model(tmp_path / "snail.keras")
    assert type(loaded) is km.SNAIL and loaded.attention == [[8, 4], [4, 6]]
    expected = predict(model, inputs)
    np.testing.assert_array_equal(predict(loaded, inputs), expected)
    spec = {"support_x": tf.TensorSpec([None, None, *zoo.IMAGE]),
            "support_y": tf.TensorSpec([None, None], tf.int32),
            "query_x": tf.TensorSpec([None, None, *zoo.IMAGE])}
    traced = tf.function(lambda x: loaded(x), input_signature=[spec])
    np.testing.assert_allclose(traced(inputs).numpy(), expected, rtol=1e-5, atol=1e-5)
