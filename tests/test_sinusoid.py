"""The sinusoid family, and MAML meta-learning it through `fit`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km


def take(dataset, batches):
    return [tf.nest.map_structure(np.asarray, b) for b in dataset.take(batches)]


def test_episode_shapes_and_that_every_task_is_one_sinusoid():
    inputs, query_y = take(km.data.sinusoid_episodes(shots=7, query_shots=9, meta_batch_size=4), 1)[0]
    assert inputs["support_x"].shape == inputs["support_y"].shape == (4, 7, 1)
    assert inputs["query_x"].shape == query_y.shape == (4, 9, 1)
    for t in range(4):
        # y = A sin(x − φ) = a sin x − b cos x with a = A cos φ, b = A sin φ: fit (a, b)
        # on the support set by least squares; it must predict the query set exactly.
        sx, sy = inputs["support_x"][t, :, 0], inputs["support_y"][t, :, 0]
        basis = np.stack([np.sin(sx), -np.cos(sx)], axis=1)
        (a, b), *_ = np.linalg.lstsq(basis, sy, rcond=None)
        qx = inputs["query_x"][t, :, 0]
        np.testing.assert_allclose(a * np.sin(qx) - b * np.cos(qx), query_y[t, :, 0], atol=1e-4)
        amplitude, phase = np.hypot(a, b), np.arctan2(b, a)
        assert 0.1 - 1e-4 <= amplitude <= 5.0 + 1e-4
        assert -1e-4 <= phase <= np.pi + 1e-4
        assert np.all(np.abs(np.concatenate([sx, qx])) <= 5.0)


def test_seeded_streams_are_reproducible_and_distinct():
    first = take(km.data.sinusoid_episodes(meta_batch_size=3, seed=5), 3)
    again = take(km.data.sinusoid_episodes(meta_batch_size=3, seed=5), 3)
    other = take(km.data.sinusoid_episodes(meta_batch_size=3, seed=6), 3)
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a[1], b[1])
        assert not np.allclose(a[1], c[1])
    assert not np.allclose(first[0][1], first[1][1])
    resumed = take(km.data.sinusoid_episodes(meta_batch_size=3, seed=5).skip(2), 1)[0]
    np.testing.assert_array_equal(resumed[1], first[2][1])


def per_task_mse(model, dataset, batches):
    errors = []
    for inputs, query_y in dataset.take(batches):
        predictions = model.predict(inputs, verbose=0)
        errors.append(np.mean((predictions - query_y.numpy()) ** 2, axis=(1, 2)))
    return np.concatenate(errors)


@pytest.mark.slow  # about 30 s of training
def test_meta_training_beats_joint_pretraining_fine_tuned_the_same_way():
    keras.utils.set_random_seed(0)
    iterations = 3000
    train = km.data.sinusoid_episodes(meta_batch_size=25, seed=0)
    test = km.data.sinusoid_episodes(shots=10, query_shots=40, meta_batch_size=50, seed=123)

    maml = km.MAML(km.learners.mlp(), inner_lr=0.01, inner_steps=1, eval_inner_steps=5)
    maml.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    maml.fit(train, steps_per_epoch=iterations, epochs=1, verbose=0)

    # The baseline: the same network trained jointly on every point of the same
    # tasks (ordinary regression), then fine-tuned by the same 5 SGD steps.
    pretrained = km.learners.mlp()
    pretrained.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    pooled = train.map(lambda inputs, query_y: (
        tf.reshape(tf.concat([inputs["support_x"], inputs["query_x"]], 1), (-1, 1)),
        tf.reshape(tf.concat([inputs["support_y"], query_y], 1), (-1, 1))))
    pretrained.fit(pooled, steps_per_epoch=iterations, epochs=1, verbose=0)
    fine_tuned = km.MAML(pretrained, inner_lr=0.01, inner_steps=5)
    fine_tuned.compile(loss="mse")

    adapted = per_task_mse(maml, test, 4).mean()
    baseline = per_task_mse(fine_tuned, test, 4).mean()
    maml.eval_inner_steps = 0
    unadapted = per_task_mse(maml, test, 4).mean()
    print(f"MAML 5 steps {adapted:.3f}, before adaptation {unadapted:.3f}, "
          f"pretrained + 5 steps {baseline:.3f}")
    assert adapted < 0.5 * unadapted
    assert adapted < 0.5 * baseline
