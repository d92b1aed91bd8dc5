"""Seeded support/query augmentation inside the `tf.data` episode pipeline.

A transform maps images `[N, H, W, C]` and a stateless key to images of the
same shape, drawing one set of random parameters per image:
`transform(images, key) = transform.apply(images, transform.parameters(key, N))`.

- `RandomCrop(padding)`: zero-pad by `padding` pixels, crop back at a random offset.
- `RandomFlip()`: left-right flip with probability 1/2.
- `ColourJitter(brightness, contrast, saturation)`: random factors per image.
- `RandomAffine(rotation, shear, scale, translation)`: for characters.
- `Compose(*transforms)`; `natural_images()` and `characters()` are presets.

`EpisodeAugmentation(transform, apply_to)` applies a transform to the
support and/or query images of an episode batch (padded entries stay
zero); `augment_episodes(dataset, augmentation, seed)` maps it over a
dataset of episodes with a key drawn from `(seed, batch index)`, and
`km.data.variable_episodes(..., augment=...)` takes it directly.
"""

from __future__ import annotations

import abc
import math

import tensorflow as tf

from keras_meta import arguments, episode
from keras_meta.data import stream


def _split(key, count):
    return tf.unstack(tf.random.experimental.stateless_split(key, num=count))


class Transform(abc.ABC):
    """Base of the augmentations: `parameters(key, n)` draws one set of
    random parameters per image, `apply(images, parameters)` applies them.

    Args:
      (none)

    Example:

    ```python
    flip = km.data.augment.RandomFlip()
    flip(tf.zeros([4, 8, 8, 1]), tf.constant([1, 2], tf.int64)).shape  # (4, 8, 8, 1)
    ```
    """

    @abc.abstractmethod
    def parameters(self, key, count):
        """Random parameters of `count` images from a stateless `key` `[2]`."""

    @abc.abstractmethod
    def apply(self, images, parameters):
        """`images` `[count, H, W, C]` transformed by `parameters`."""

    def __call__(self, images, key):
        images = tf.convert_to_tensor(images)
        return self.apply(images, self.parameters(key, tf.shape(images)[0]))


class RandomCrop(Transform):
    """Zero-pads each image by `padding` pixels on every side and crops it
    back to its size at an offset uniform in `[0, 2·padding]²`.

    Args:
      padding: int ≥ 0.

    Example:

    ```python
    crop = km.data.augment.RandomCrop(4)
    ```
    """

    def __init__(self, padding=4):
        arguments.check_int("padding", padding, minimum=0)
        self.padding = padding

    def parameters(self, key, count):
        """`[N, 2]` int32 offsets (row, column)."""
        return tf.random.stateless_uniform([count, 2], key, 0, 2 * self.padding + 1, tf.int32)

    def apply(self, images, parameters):
        p = self.padding
        height, width = images.shape[1], images.shape[2]
        padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]])
        rows = parameters[:, 0:1] + tf.range(height)[None]                    # [N, H]
        cols = parameters[:, 1:2] + tf.range(width)[None]                     # [N, W]
        picked = tf.gather(padded, rows, axis=1, batch_dims=1)               # [N, H, W+2p, C]
        return tf.gather(picked, cols, axis=2, batch_dims=1)


class RandomFlip(Transform):
    """Flips each image left-right with probability `probability`.

    Args:
      probability: in [0, 1].

    Example:

    ```python
    flip = km.data.augment.RandomFlip(0.5)
    ```
    """

    def __init__(self, probability=0.5):
        arguments.check_finite_number("probability", probability, minimum=0)
        if probability > 1:
            raise ValueError(f"`probability` must be in [0, 1]; received {probability!r}.")
        self.probability = float(probability)

    def parameters(self, key, count):
        """`[N]` bool: flip this image?"""
        return tf.random.stateless_uniform([count], key) < self.probability

    def apply(self, images, parameters):
        return tf.where(parameters[:, None, None, None], tf.reverse(images, axis=[2]), images)


class ColourJitter(Transform):
    """Random brightness, contrast and saturation per image, in that order:
    `x + b`, then `(x − mean(x)) · c + mean(x)` (mean over the image), then
    `(x − gray) · s + gray` (gray the mean over channels), `b` uniform in
    `[−brightness, brightness]`, `c` in `[1 − contrast, 1 + contrast]`,
    `s` in `[1 − saturation, 1 + saturation]`.

    Args:
      brightness, contrast, saturation: numbers ≥ 0 (0 turns one off).

    Example:

    ```python
    jitter = km.data.augment.ColourJitter(0.4, 0.4, 0.4)
    ```
    """

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4):
        for name, value in (("brightness", brightness), ("contrast", contrast),
                            ("saturation", saturation)):
            arguments.check_finite_number(name, value, minimum=0)
        self.brightness, self.contrast, self.saturation = (
            float(brightness), float(contrast), float(saturation))

    def parameters(self, key, count):
        """`[N, 3]` float32: brightness offset, contrast and saturation factors."""
        u = tf.random.stateless_uniform([count, 3], key, -1.0, 1.0)
        scale = tf.constant([self.brightness, self.contrast, self.saturation])
        return u * scale + tf.constant([0.0, 1.0, 1.0])

    def apply(self, images, parameters):
        p = tf.cast(parameters, images.dtype)[:, None, None, :]
        x = images + p[..., 0:1]
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * p[..., 1:2] + mean
        gray = tf.reduce_mean(x, axis=3, keepdims=True)
        return (x - gray) * p[..., 2:3] + gray


class RandomAffine(Transform):
    """A random affine distortion per image (characters): rotation by an
    angle uniform in `[−rotation, rotation]` degrees, shear `[−shear, shear]`,
    scale uniform in `scale`, translation by up to `translation` × size in
    each direction, about the image centre; nearest-neighbour sampling,
    zero outside the image.

    Output pixel `(r, c)` reads input pixel `round(A · ((r, c) − centre) +
    centre + t)`, `A` being the inverse map of `parameters` (`[N, 6]`:
    a00, a01, a10, a11, t_row, t_col).

    Args:
      rotation: the largest rotation, degrees ≥ 0.
      shear: the largest shear factor, ≥ 0.
      scale: `(low, high)`, 0 < low <= high: the range of the zoom.
      translation: the largest shift, a fraction of the size ≥ 0.

    Example:

    ```python
    distort = km.data.augment.RandomAffine(rotation=15, shear=0.2)
    ```
    """

    def __init__(self, rotation=15.0, shear=0.2, scale=(0.9, 1.1), translation=0.1):
        for name, value in (("rotation", rotation), ("shear", shear),
                            ("translation", translation)):
            arguments.check_finite_number(name, value, minimum=0)
        try:
            low, high = (float(v) for v in scale)
        except (TypeError, ValueError):
            raise ValueError(f"`scale` must be a pair (low, high); received {scale!r}.") from None
        if not (0 < low <= high and math.isfinite(high)):
            raise ValueError(f"`scale` must satisfy 0 < low <= high; received {scale!r}.")
        self.rotation, self.shear, self.translation = (
            float(rotation), float(shear), float(translation))
        self.scale = (low, high)

    def parameters(self, key, count, size=None):
        """`[N, 6]`: the inverse linear map (row-major 2×2) and the
        translation in pixels, `size` being `(H, W)` (set by `__call__`)."""
        u = tf.random.stateless_uniform([count, 5], key, -1.0, 1.0)
        angle = u[:, 0] * self.rotation * math.pi / 180.0
        shear = u[:, 1] * self.shear
        zoom = self.scale[0] + (u[:, 2] + 1.0) / 2.0 * (self.scale[1] - self.scale[0])
        height, width = size if size is not None else (1, 1)
        shift = u[:, 3:5] * self.translation * tf.constant([float(height), float(width)])
        cos, sin = tf.cos(angle), tf.sin(angle)
        # inverse of zoom · rotation · shear, applied to output coordinates
        a00, a01 = cos / zoom, (sin + shear * cos) / zoom
        a10, a11 = -sin / zoom, (cos - shear * sin) / zoom
        return tf.stack([a00, a01, a10, a11, shift[:, 0], shift[:, 1]], axis=1)

    def __call__(self, images, key):
        images = tf.convert_to_tensor(images)
        size = (images.shape[1], images.shape[2])
        return self.apply(images, self.parameters(key, tf.shape(images)[0], size))

    def apply(self, images, parameters):
        height, width = images.shape[1], images.shape[2]
        centre = tf.constant([(height - 1) / 2.0, (width - 1) / 2.0])
        grid = tf.stack(tf.meshgrid(tf.range(height, dtype=tf.float32),
                                    tf.range(width, dtype=tf.float32), indexing="ij"), -1)
        offsets = tf.reshape(grid - centre, [-1, 2])                          # [HW, 2]
        linear = tf.reshape(tf.cast(parameters[:, :4], tf.float32), [-1, 2, 2])
        source = tf.einsum("nij,pj->npi", linear, offsets) + centre \
            + tf.cast(parameters[:, None, 4:6], tf.float32)                   # [N, HW, 2]
        source = tf.cast(tf.round(source), tf.int32)
        inside = tf.reduce_all(tf.logical_and(source >= 0, source < [height, width]), axis=-1)
        clipped = tf.clip_by_value(source, 0, [height - 1, width - 1])
        flat = tf.reshape(images, [tf.shape(images)[0], height * width, -1])
        values = tf.gather(flat, clipped[..., 0] * width + clipped[..., 1], batch_dims=1)
        values = tf.where(inside[..., None], values, tf.zeros([], values.dtype))
        return tf.reshape(values, tf.shape(images))


class Compose:
    """Applies `transforms` in order, each with its own key (a callable
    `(images, key) -> images`, like a `Transform`).

    Args:
      *transforms: `Transform`s.

    Example:

    ```python
    km.data.augment.Compose(km.data.augment.RandomCrop(4), km.data.augment.RandomFlip())
    ```
    """

    def __init__(self, *transforms):
        for t in transforms:
            if not callable(t):
                raise TypeError(f"`transforms` must be callables `(images, key) -> images`; "
                                f"received {t!r}.")
        self.transforms = transforms

    def __call__(self, images, key):
        for t, k in zip(self.transforms, _split(key, max(len(self.transforms), 1))):
            images = t(images, k)
        return images


def natural_images(padding=8, flip=True, brightness=0.4, contrast=0.4, saturation=0.4):
    """Random crop, left-right flip and colour jitter (mini-ImageNet, CUB, CIFAR).

    Args:
      padding: crop padding in pixels.
      flip: whether to flip left-right (probability 1/2).
      brightness, contrast, saturation: as for `ColourJitter`.

    Returns:
      A `Compose`.

    Example:

    ```python
    augmentation = km.data.augment.EpisodeAugmentation(km.data.augment.natural_images())
    ```
    """
    parts = [RandomCrop(padding)] + ([RandomFlip()] if flip else [])
    return Compose(*parts, ColourJitter(brightness, contrast, saturation))


def characters(rotation=15.0, shear=0.2, scale=(0.9, 1.1), translation=0.1):
    """An affine distortion for handwritten characters (Omniglot).

    Args:
      rotation, shear, scale, translation: as for `RandomAffine`.

    Returns:
      A `RandomAffine`.

    Example:

    ```python
    augmentation = km.data.augment.EpisodeAugmentation(km.data.augment.characters())
    ```
    """
    return RandomAffine(rotation, shear, scale, translation)


class EpisodeAugmentation:
    """Applies `transform` to the support and/or query images of an episode
    batch `inputs` (`[T, N, H, W, C]`), with one key per batch; padded
    entries (masks) stay zero.

    Args:
      transform: a `Transform` (or any `(images [N, H, W, C], key) → images`).
      apply_to: "support", "query" or "both".

    Example:

    ```python
    augmentation = km.data.augment.EpisodeAugmentation(km.data.augment.RandomFlip(), "both")
    inputs = augmentation(inputs, tf.constant([0, 1], tf.int64))
    ```
    """

    def __init__(self, transform, apply_to="support"):
        if not callable(transform):
            raise TypeError(f"`transform` must be callable `(images, key) -> images`; received "
                            f"{transform!r}.")
        if apply_to not in ("support", "query", "both"):
            raise ValueError(f'`apply_to` must be "support", "query" or "both"; received '
                             f"{apply_to!r}.")
        self.transform = transform
        self.apply_to = apply_to

    def __call__(self, inputs, key):
        inputs = dict(inputs)
        keys = _split(key, 2)
        for i, (name, images_key, mask_key) in enumerate(
                (("support", episode.SUPPORT_X, episode.SUPPORT_MASK),
                 ("query", episode.QUERY_X, episode.QUERY_MASK))):
            if self.apply_to not in (name, "both"):
                continue
            images = tf.convert_to_tensor(inputs[images_key])
            shape = tf.shape(images)
            flat = tf.reshape(images, tf.concat([[-1], shape[2:]], 0))
            changed = tf.reshape(self.transform(flat, keys[i]), shape)
            if mask_key in inputs:
                real = tf.reshape(tf.cast(inputs[mask_key], tf.bool),
                                  tf.concat([shape[:2], tf.ones([images.shape.rank - 2],
                                                                tf.int32)], 0))
                changed = tf.where(real, changed, tf.zeros([], changed.dtype))
            inputs[images_key] = changed
        return inputs


def augment_episodes(dataset, augmentation, seed=0, start=0):
    """`dataset` of `(inputs, query_y)` episode batches with `augmentation`
    applied to batch `i` under a key drawn from `(seed, start + i)`.

    Args:
      dataset: a `tf.data.Dataset` of episodes.
      augmentation: an `EpisodeAugmentation`.
      seed: int.
      start: the index of the dataset's first batch (resuming): an int, or a
        scalar integer variable (a model's meta-iteration) read when iteration
        begins.

    Returns:
      A `tf.data.Dataset` of the same structure.

    Example:

    ```python
    train = km.data.augment.augment_episodes(
        km.data.omniglot_episodes("train", ways=5, shots=1, query_shots=5, meta_batch_size=4),
        km.data.augment.EpisodeAugmentation(km.data.augment.characters()), seed=0)
    ```
    """
    if not isinstance(augmentation, EpisodeAugmentation):
        raise TypeError("`augmentation` must be a km.data.augment.EpisodeAugmentation; "
                        f"received {type(augmentation).__name__}.")
    arguments.check_int("seed", seed)

    def augment(index, element):
        inputs, query_y = element
        key = tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), index)
        return augmentation(inputs, key), query_y

    indices = stream.counter(start)
    return tf.data.Dataset.zip((indices, dataset)).map(
        augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
