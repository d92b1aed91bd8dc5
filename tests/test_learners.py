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
