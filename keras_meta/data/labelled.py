"""Ordinary labelled batches of a class split: every class jointly, with
labels `0..num_classes-1` over the whole split (episodes relabel classes per
task). This is the data of the transfer-learning baselines
(`km.baselines.FineTune` pre-trains on it)."""

import numpy as np
import tensorflow as tf

from keras_meta import arguments
from keras_meta.data import class_split, image_table, omniglot, sampling, stream


def labelled_batches(source, *, batch_size, classes=None, split=None, group_by=None, seed=0,
                     rotations=False, image_size=None, preprocess=None, tfds_split="train",
                     data_dir=None, image_key="image", label_key="label"):
    """An infinite, shuffled, seeded stream of labelled batches.

    Classes are selected as by `km.data.episodes` (same arguments), so the
    classes of `split` here are exactly those its episodes draw from.

    Args:
      source, classes, split, group_by, rotations: as `km.data.episodes`.
      image_size, preprocess, tfds_split, data_dir, image_key, label_key: as
        `km.data.episodes`.
      batch_size: examples per batch.
      seed: shuffling seed.

    Returns:
      `(dataset, num_classes)`: batches `(images [batch_size, H, W, C]
      float32, labels [batch_size] int32)`. Class `j` is the `j`-th selected
      class in sorted label order; with rotations, class `j` in
      `0..4K-1` is class `j % K` turned `j // K` quarter turns (as `np.rot90`).

    Example:

    ```python
    pairs = tf.data.Dataset.from_tensor_slices(
        (np.zeros((100, 8, 8, 1), "uint8"), np.repeat(np.arange(10), 10)))
    dataset, num_classes = km.data.labelled_batches(pairs, batch_size=16, split="train",
                                                    classes={"train": range(6), "test": [6, 7]})
    images, labels = next(iter(dataset))  # [16, 8, 8, 1] float32, [16] int32; num_classes == 6
    ```
    """
    arguments.check_int("batch_size", batch_size, minimum=1)
    arguments.check_int("seed", seed)
    if not isinstance(rotations, bool):
        raise ValueError(f"`rotations` must be a bool; received {rotations!r}.")
    table = image_table.load_image_table(
        source, preprocess=preprocess, image_size=arguments.check_image_size(image_size),
        tfds_split=tfds_split, data_dir=data_dir, image_key=image_key, label_key=label_key,
        group_by=group_by)
    pool = sampling.ClassPool(table, class_split.select_classes(table, classes, split, group_by))
    images = pool.images
    labels = np.repeat(np.arange(pool.num_classes, dtype=np.int32), pool.counts)
    num_classes = pool.num_classes
    if rotations:
        if images.shape[1] != images.shape[2]:
            raise ValueError(f"`rotations` needs square images; they are {images.shape[1:3]}.")
        turns = range(sampling.QUARTER_TURNS)
        images = np.concatenate([np.rot90(images, k, axes=(1, 2)) for k in turns])
        labels = np.concatenate([labels + k * num_classes for k in turns])
        num_classes *= sampling.QUARTER_TURNS
    dataset = stream.without_autotune(
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(labels), seed=seed)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return dataset, num_classes


def omniglot_batches(split, *, batch_size, seed=0, rotations=None, source="omniglot_minimal",
                     data_dir=None):
    """Labelled Omniglot batches of `split`, with the classes and preprocessing
    of `km.data.omniglot_episodes(split, ...)`.

    Args:
      split, source, rotations: as `km.data.omniglot_episodes` (rotations by
        default on for "train" only).
      batch_size, seed: as `labelled_batches`.
      data_dir: TFDS data directory (TFDS's default when None).

    Returns:
      `(dataset, num_classes)` (see `labelled_batches`); images `[28, 28, 1]`.

    Example:

    ```python
    dataset, num_classes = km.data.omniglot_batches("train", batch_size=64)
    classifier = keras.Sequential([km.learners.conv4_embedding(),
                                   keras.layers.Dense(num_classes)])  # pre-training
    ```
    """
    return labelled_batches(batch_size=batch_size, seed=seed, data_dir=data_dir,
                            **omniglot.omniglot_selection(split, source, rotations))
