"""The metric learners' backbones: conv4_embedding and ResNet-12."""

import numpy as np
import pytest

import keras_meta as km


def test_conv4_embedding_is_conv4_without_its_head():
    model = km.learners.conv4_embedding()
    assert model.output_shape == (None, 64)
    convs = [3 * 3 * c_in * 64 + 64 for c_in in (1, 64, 64, 64)]
    batch_norm = 4 * 4 * 64  # gamma, beta, moving mean, moving variance
    assert model.count_params() == sum(convs) + batch_norm


def test_conv4_embedding_feature_maps_for_relation_networks():
    model = km.learners.conv4_embedding(filters=8, pooled_blocks=2, flatten=False)
    assert model.output_shape == (None, 7, 7, 8)
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")
    assert model.predict(x, verbose=0).shape == (3, 7, 7, 8)


def test_resnet12_has_four_residual_blocks_and_12_million_weights():
    model = km.learners.resnet12()
    assert model.output_shape == (None, 640)
    widths, inputs, expected = (64, 160, 320, 640), (3, 64, 160, 320), 0
    for c_in, width in zip(inputs, widths):
        shortcut = c_in * width + 4 * width
        convs = 9 * c_in * width + 2 * 9 * width * width + 3 * 4 * width
        expected += shortcut + convs
    assert model.count_params() == expected
    assert round(expected / 1e6, 1) == 12.4  # the size the few-shot literature reports


def test_resnet12_embeds_small_images():
    model = km.learners.resnet12(filters=(8, 8, 16, 16), input_shape=(28, 28, 1))
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    assert model.predict(x, verbose=0).shape == (2, 16)


@pytest.mark.parametrize("make, argument", [
    (lambda: km.learners.conv4_embedding(pooled_blocks=5), "pooled_blocks"),
    (lambda: km.learners.resnet12(filters=(64, 160, 320)), "filters"),
])
def test_bad_arguments_raise_value_errors_naming_them(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()
