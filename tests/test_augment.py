"""`km.data.augment`: each transform against a direct NumPy computation of
the same parameters, determinism for a seed, and the episode hook."""

import math

import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta.data import augment

KEY = tf.constant([3, 4], tf.int64)


def _images(n=6, size=8, channels=3, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, size, size, channels)).astype("float32")


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
    crop, images = augment.RandomCrop(2), _images()
    offsets = crop.parameters(KEY, len(images)).numpy()
    assert offsets.min() >= 0 and offsets.max() <= 4 and len(np.unique(offsets)) > 1
    out = crop.apply(tf.constant(images), tf.constant(offsets)).numpy()
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)])
    for i, (r, c) in enumerate(offsets):
        np.testing.assert_array_equal(out[i], padded[i, r:r + 8, c:c + 8])


def test_flip_and_colour_jitter_match_numpy():
    images = _images()
    flags = np.array([True, False, True, True, False, False])
    np.testing.assert_array_equal(
        augment.RandomFlip().apply(tf.constant(images), tf.constant(flags)).numpy(),
        np.where(flags[:, None, None, None], images[:, :, ::-1], images))
    jitter = augment.ColourJitter(0.3, 0.5, 0.2)
    params = jitter.parameters(KEY, len(images)).numpy()
    assert (np.abs(params[:, 0]) <= 0.3).all() and (np.abs(params[:, 1] - 1) <= 0.5).all()
    expected = []
    for image, (b, c, s) in zip(images, params):
        x = image + b
        x = (x - x.mean()) * c + x.mean()
        gray = x.mean(axis=-1, keepdims=True)
        expected.append((x - gray) * s + gray)
    np.testing.assert_allclose(jitter.apply(tf.constant(images), tf.constant(params)).numpy(),
                               np.stack(expected), rtol=1e-5, atol=1e-6)


def test_affine_matches_nearest_neighbour_inverse_mapping():
    distort, images = augment.RandomAffine(rotation=30, shear=0.3, translation=0.2), _images(
        channels=1)
    params = distort.parameters(KEY, len(images), (8, 8)).numpy()
    out = distort.apply(tf.constant(images), tf.constant(params)).numpy()
    centre = 3.5
    for i, (a00, a01, a10, a11, tr, tc) in enumerate(params):
        for r in range(8):
            for c in range(8):
                dr, dc = r - centre, c - centre
                sr = int(np.round(a00 * dr + a01 * dc + centre + tr))
                sc = int(np.round(a10 * dr + a11 * dc + centre + tc))
                inside = 0 <= sr < 8 and 0 <= sc < 8
                assert out[i, r, c, 0] == (images[i, sr, sc, 0] if inside else 0.0)
    # the identity parameters reproduce the image; a quarter turn is np.rot90
    identity = np.tile([[1, 0, 0, 1, 0, 0]], (len(images), 1)).astype("float32")
    np.testing.assert_array_equal(distort.apply(tf.constant(images), identity).numpy(), images)
    angle = math.pi / 2
    turn = np.tile([[math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle), 0, 0]],
                   (len(images), 1)).astype("float32")
    np.testing.assert_array_equal(distort.apply(tf.constant(images), turn).numpy(),
                                  np.rot90(images, k=1, axes=(1, 2)))


def test_deterministic_for_a_seed_and_episode_hook():
    pairs = tf.data.Dataset.from_tensor_slices(
        (np.random.default_rng(1).integers(0, 255, (60, 8, 8, 3)).astype("uint8"),
         np.repeat(np.arange(6), 10)))
    episodes = km.data.episodes(pairs, ways=3, shots=2, query_shots=2, meta_batch_size=2)
    hook = augment.EpisodeAugmentation(augment.natural_images(padding=2), "support")

    def first(seed):
        return next(iter(augment.augment_episodes(episodes, hook, seed=seed)))

    (a, ya), (b, _), (c, _) = first(0), first(0), first(1)
    plain, plain_y = next(iter(episodes))
    np.testing.assert_array_equal(a["support_x"], b["support_x"])
    assert not np.array_equal(a["support_x"], c["support_x"])
    assert not np.array_equal(a["support_x"], plain["support_x"])
    np.testing.assert_array_equal(a["query_x"], plain["query_x"])      # support only
    np.testing.assert_array_equal(ya, plain_y)
    # the hook equals the transform applied with the key of (seed, batch 0)
    key = tf.random.experimental.stateless_fold_in(tf.constant([0, 0], tf.int64),
                                                   tf.constant(0, tf.int64))
    np.testing.assert_allclose(a["support_x"], hook(plain, key)["support_x"], rtol=1e-6)
    # in variable episodes, padded entries stay zero
    variable = km.data.variable_episodes(pairs, meta_batch_size=2, max_ways=6,
                                         max_support_size=20, augment=augment.EpisodeAugmentation(
                                             augment.ColourJitter(0.5, 0, 0), "both"))
    inputs, _ = next(iter(variable))
    for x, mask in (("support_x", "support_mask"), ("query_x", "query_mask")):
        assert (inputs[x].numpy()[~inputs[mask].numpy()] == 0).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="apply_to"):
        augment.EpisodeAugmentation(augment.RandomFlip(), "labels")
    with pytest.raises(ValueError, match="scale"):
        augment.RandomAffine(scale=(2.0, 1.0))
    with pytest.raises(ValueError, match="probability"):
        augment.RandomFlip(1.5)
    with pytest.raises(TypeError, match="augmentation"):
        augment.augment_episodes(tf.data.Dataset.range(2), augment.RandomFlip())
