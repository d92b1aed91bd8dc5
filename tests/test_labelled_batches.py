"""Labelled batches of a class split, the pre-training data of FineTune."""

import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km


def test_omniglot_minimal_split_sizes_and_labels():
    for split, classes in (("train", 157), ("validation", 26), ("test", 59)):
        _, num_classes = km.data.omniglot_batches(split, batch_size=8, rotations=False)
        assert num_classes == classes
    dataset, num_classes = km.data.omniglot_batches("train", batch_size=32)
    assert num_classes == 4 * 157
    images, labels = next(iter(dataset))
    assert images.shape == (32, 28, 28, 1) and images.dtype == tf.float32
    assert labels.dtype == tf.int32 and 0 <= labels.numpy().min() and labels.numpy().max() < 628


def test_rotated_classes_are_quarter_turns_of_their_class():
    dataset, num_classes = km.data.omniglot_batches("validation", batch_size=26 * 20 * 4,
                                                    rotations=True, seed=3)
    images, labels = (t.numpy() for t in next(iter(dataset)))
    assert np.bincount(labels).tolist() == [20] * num_classes  # one epoch, every example once
    for j in (0, 7, 25):
        upright = {im.tobytes() for im in images[labels == j]}
        for turns in (1, 2, 3):
            turned = {np.ascontiguousarray(np.rot90(im, -turns)).tobytes()
                      for im in images[labels == j + turns * 26]}
            assert turned == upright


def test_splits_share_no_image():
    train, _ = km.data.omniglot_batches("train", batch_size=157 * 20, rotations=False)
    test, _ = km.data.omniglot_batches("test", batch_size=59 * 20)
    train_images = {im.tobytes() for im in next(iter(train))[0].numpy()}
    test_images = {im.tobytes() for im in next(iter(test))[0].numpy()}
    assert len(test_images) == 59 * 20 and not train_images & test_images


@pytest.mark.parametrize("kwargs, argument", [
    (dict(split="background", batch_size=8), "split"),
    (dict(split="train", batch_size=0), "batch_size"),
    (dict(split="train", batch_size=8, source="mnist"), "source"),
])
def test_bad_arguments_raise_value_errors_naming_them(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        km.data.omniglot_batches(**kwargs)
