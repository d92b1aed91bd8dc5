import keras
import numpy as np

import keras_meta as km


def test_conv4_matches_the_maml_architecture():
    model = km.learners.conv4(ways=5)
    assert model.output_shape == (None, 5)
    convs = [3 * 3 * c_in * 64 + 64 for c_in in (1, 64, 64, 64)]
    batch_norm_trainable, batch_norm_moving = 4 * 2 * 64, 4 * 2 * 64
    # 28 → 14 → 7 → 3 → 1 after four 2×2 max-pools: 64 features into the head.
    head = 64 * 5 + 5
    assert model.count_params() == sum(convs) + batch_norm_trainable + batch_norm_moving + head
    assert sum(np.prod(v.shape) for v in model.non_trainable_variables) == batch_norm_moving


def test_mlp_matches_the_maml_regression_network():
    model = km.learners.mlp()
    assert model.output_shape == (None, 1)
    assert model.count_params() == (1 * 40 + 40) + (40 * 40 + 40) + (40 * 1 + 1)
    x = np.linspace(-5, 5, 7, dtype="float32").reshape(-1, 1)
    w1, b1, w2, b2, w3, b3 = model.get_weights()
    hidden = np.maximum(np.maximum(x @ w1 + b1, 0) @ w2 + b2, 0)
    np.testing.assert_allclose(model.predict(x, verbose=0), hidden @ w3 + b3, rtol=1e-5, atol=1e-6)


def _fan_in_uniform_checks(kernel, bias, fan_in):
    """A kernel and bias drawn from U(±1/√fan_in): inside the bound, and the
    kernel's variance that of the uniform distribution, bound² / 3."""
    bound = 1 / np.sqrt(fan_in)
    assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
    assert np.abs(bias).max() > bound / 2  # drawn, not zeros
    np.testing.assert_allclose(kernel.var(), bound**2 / 3, rtol=0.1)
    assert abs(kernel.mean()) < 0.05 * bound


def test_conv4_starts_as_pytorchs_default_initialisation():
    keras.utils.set_random_seed(0)
    model = km.learners.conv4(ways=5, input_shape=(84, 84, 3))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    for conv, in_channels in zip(convs, (3, 64, 64, 64)):
        _fan_in_uniform_checks(conv.kernel.numpy(), conv.bias.numpy(), 9 * in_channels)
    head = model.layers[-1]
    _fan_in_uniform_checks(head.kernel.numpy(), head.bias.numpy(), 5 * 5 * 64)  # 84 → 5 × 5
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [norm.epsilon for norm in norms] == [1e-5] * 4


def test_conv4_embedding_starts_as_pytorchs_default_initialisation():
    keras.utils.set_random_seed(0)
    model = km.learners.conv4_embedding()
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    for conv, in_channels in zip(convs, (1, 64, 64, 64)):
        _fan_in_uniform_checks(conv.kernel.numpy(), conv.bias.numpy(), 9 * in_channels)
    # Each layer draws its own values: no two layers of the same shape coincide.
    assert not np.allclose(convs[1].kernel.numpy(), convs[2].kernel.numpy())
    assert all(layer.epsilon == 1e-5 for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization))


def test_resnet12_kernels_follow_kaiming_normal_fan_out():
    keras.utils.set_random_seed(0)
    model = km.learners.resnet12(filters=(64, 64, 64, 64), input_shape=(28, 28, 1))
    kernel = model.get_layer("block1_conv1").kernel.numpy()  # 3 × 3 × 64 → 64
    np.testing.assert_allclose(kernel.var(), 2 / (9 * 64), rtol=0.05)
