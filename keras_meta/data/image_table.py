"""Loads an image-classification source into memory once, decoded and
preprocessed, as numpy arrays the episode sampler indexes.

A source is the name of a TFDS dataset or a `tf.data.Dataset` whose elements
are `(image, label)` pairs or feature dicts. Images come out float32; the
default preprocessing maps integer pixels to [0, 1] (`uint8` 255 → 1.0) and
leaves float pixels as they are.
"""

from __future__ import annotations  # `X | None` fields on Python 3.9

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

_LOAD_BATCH = 512


@dataclasses.dataclass(frozen=True)
class ImageTable:
    """Every example of a source, in memory.

    Attributes:
      images: `[N, H, W, C]` float32, preprocessed.
      labels: `[N]` int64 class labels.
      groups: `[N]` int64 values of the grouping feature, or None.
      group_names: names of the group ids (a TFDS `ClassLabel`'s names), or None.
      drawers: `[N]` int64 values of the drawer feature, or None.
    """

    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None = None
    group_names: tuple | None = None
    drawers: np.ndarray | None = None


def load_image_table(source, *, preprocess=None, image_size=None, tfds_split="train",
                     data_dir=None, image_key="image", label_key="label", group_by=None,
                     drawer_key=None):
    """Reads, decodes and preprocesses every example of `source`.

    Args:
      source: a TFDS dataset name, or a `tf.data.Dataset` of `(image, label)`
        pairs or of feature dicts holding `image_key`, `label_key` (and
        `group_by`, `drawer_key`).
      preprocess: `image [H, W, C] -> float32 [H', W', C']`; by default
        `tf.image.convert_image_dtype(image, tf.float32)`.
      image_size: `(height, width)` to resize to (antialiased) after
        `preprocess`, or None to keep the size.
      tfds_split: TFDS split(s) to read, e.g. "train" or "train+test".
      data_dir: TFDS data directory (TFDS's default when None).
      image_key, label_key: feature names of the image and the class label.
      group_by: name of a feature grouping classes (e.g. "alphabet"), or None.
      drawer_key: name of an integer feature saying who made each example
        (e.g. Omniglot's "drawer"), or None.

    Returns:
      An `ImageTable`.
    """
    optional = ("group_by", "drawer_key")
    for argument, key in (("image_key", image_key), ("label_key", label_key),
                          ("group_by", group_by), ("drawer_key", drawer_key)):
        if not isinstance(key, str) and (argument not in optional or key is not None):
            raise ValueError(f"`{argument}` must be a feature name (str); received {key!r}.")
    if isinstance(source, str):
        dataset, group_names = _tfds_dataset(source, tfds_split, data_dir,
                                             (image_key, label_key, group_by, drawer_key))
    elif isinstance(source, tf.data.Dataset):
        dataset, group_names = _as_feature_dicts(source, group_by, drawer_key), None
    else:
        raise ValueError(
            "`source` must be a TFDS dataset name or a tf.data.Dataset; received "
            f"{type(source).__name__}."
        )
    _check_features(dataset.element_spec, image_key, label_key, group_by, drawer_key)
    columns = dataset.map(
        lambda example: _columns(example, preprocess, image_size, image_key, label_key, group_by,
                                 drawer_key),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    _check_image_spec(columns.element_spec[0], preprocess)
    arrays = [np.concatenate(parts) for parts in zip(*columns.batch(_LOAD_BATCH).as_numpy_iterator())]
    if not arrays:
        raise ValueError("`source` has no examples.")
    groups = arrays[2] if group_by is not None else None
    drawers = arrays[3] if drawer_key is not None else None
    return ImageTable(arrays[0], arrays[1].astype(np.int64), groups, group_names, drawers)


def _tfds_dataset(name, split, data_dir, keys):
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as error:
        raise ValueError(f"`source`: {error}") from error
    features = builder.info.features
    _check_features(features, *keys)
    builder.download_and_prepare()
    try:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
    except (ValueError, KeyError) as error:
        raise ValueError(
            f"`tfds_split` {split!r} is not a split of {name}; available splits: "
            f"{sorted(builder.info.splits)}."
        ) from error
    group = keys[2]
    names = None
    if group is not None and isinstance(features[group], tfds.features.ClassLabel):
        names = tuple(features[group].names)
    return dataset, names


def _as_feature_dicts(dataset, group_by, drawer_key):
    spec = dataset.element_spec
    if isinstance(spec, dict):
        return dataset
    if isinstance(spec, tuple) and len(spec) == 2:
        for argument, key in (("group_by", group_by), ("drawer_key", drawer_key)):
            if key is not None:
                raise ValueError(
                    f"`{argument}`={key!r} needs a dataset of feature dicts; `source` "
                    "yields (image, label) pairs."
                )
        return dataset.map(lambda image, label: {"image": image, "label": label})
    raise ValueError(
        "`source` must yield (image, label) pairs or feature dicts; its element spec "
        f"is {spec}."
    )


def _check_features(features, image_key, label_key, group_by, drawer_key):
    available = sorted(features.keys())
    for argument, key in (("image_key", image_key), ("label_key", label_key),
                          ("group_by", group_by), ("drawer_key", drawer_key)):
        if key is not None and key not in available:
            raise ValueError(
                f"`{argument}`: {key!r} is not a feature of `source`; available features: "
                f"{available}."
            )


def _columns(example, preprocess, image_size, image_key, label_key, group_by, drawer_key):
    image = example[image_key]
    if image.shape.rank == 2:
        image = image[..., tf.newaxis]
    image = tf.image.convert_image_dtype(image, tf.float32) if preprocess is None else preprocess(image)
    if image_size is not None:
        image = tf.image.resize(image, image_size, antialias=True)
    label = example[label_key]
    if not label.dtype.is_integer:
        raise ValueError(f"`label_key`: {label_key!r} must hold integer labels; its dtype is {label.dtype.name}.")
    group = example[group_by] if group_by is not None else label
    drawer = example[drawer_key] if drawer_key is not None else label
    for argument, key, value in (("group_by", group_by, group), ("drawer_key", drawer_key, drawer)):
        if not value.dtype.is_integer:
            raise ValueError(
                f"`{argument}`: {key!r} must be an integer feature (e.g. a TFDS ClassLabel); "
                f"its dtype is {value.dtype.name}."
            )
    return image, label, group, drawer


def _check_image_spec(spec, preprocess):
    if spec.dtype != tf.float32:
        raise ValueError(
            f"`preprocess` must return float32 images; {preprocess!r} returned {spec.dtype.name}."
        )
    if spec.shape.rank != 3:
        raise ValueError(
            f"`image_key`: images must have shape [H, W, C] or [H, W]; after preprocessing "
            f"they have shape {spec.shape}."
        )
    if not spec.shape.is_fully_defined():
        raise ValueError(
            f"`image_size`: images must have one fixed shape [H, W, C] to be cached; they "
            f"have shape {spec.shape}. Pass image_size=(height, width) to resize them."
        )
