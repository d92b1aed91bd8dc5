"""Few-shot classification episodes from any image-classification source.

The source is decoded and preprocessed once into an in-memory table
(`image_table`); every episode is then drawn inside `tf.data` by stateless
random ops, with no Python work per episode. Batch `i` is a pure function of
`(seed, i)`, so streams are reproducible, independent of parallelism and
resumable with `skip(i)`.

Pixel convention: images are float32. The default preprocessing maps `uint8`
pixels to [0, 1]; Omniglot images are strokes = 1, background = 0 (see
`keras_meta.data.omniglot`).
"""

import numpy as np
import tensorflow as tf

from keras_meta import episode
from keras_meta import arguments
from keras_meta.data import class_split, image_table, stream

QUARTER_TURNS = 4


def episodes(source, *, ways, shots, query_shots, meta_batch_size, classes=None, split=None,
             group_by=None, seed=0, rotations=False, image_size=None, preprocess=None,
             tfds_split="train", data_dir=None, image_key="image", label_key="label", start=0):
    """An infinite, seeded stream of `ways`-way `shots`-shot episodes.

    Each task draws `ways` distinct classes without replacement, then
    `shots + query_shots` distinct examples of each: the first `shots` form
    the support set, the rest the query set, so the two never share an
    example. Classes are drawn in random order and labelled by that order,
    i.e. labels are a random permutation of `0..ways-1` per task; support and
    query examples are shuffled within their set.

    Args:
      source: a TFDS dataset name, or a `tf.data.Dataset` of `(image, label)`
        pairs or of feature dicts.
      ways, shots, query_shots: classes per task, support and query examples
        per class.
      meta_batch_size: tasks per dataset element, `T`.
      classes, split, group_by: the classes to draw from; see `class_split`
        (None: all; labels; groups of `group_by`; or a disjoint mapping
        `{split name: ...}` with `split` choosing one).
      seed: int; the same seed gives the same episodes.
      rotations: if True, each rotation of a class by 0, 90, 180 or 270
        degrees is a class of its own (4× the classes; square images only).
      image_size: `(height, width)` or int to resize images to, or None.
      preprocess: `image -> float32 image` applied once per example before
        caching; by default `uint8` → [0, 1].
      tfds_split: TFDS split(s) of a named source to read.
      data_dir: TFDS data directory (TFDS's default when None).
      image_key, label_key: feature names of dict-valued sources.
      start: index of the first batch, an int or a scalar integer variable
        such as `AtomicBackupAndRestore(...).start_iteration` (resuming; see
        `keras_meta.data.stream`).

    Returns:
      A `tf.data.Dataset` of `(inputs, query_y)`: `support_x`
      `[T, ways*shots, H, W, C]` float32, `support_y` `[T, ways*shots]` int32,
      `query_x` `[T, ways*query_shots, H, W, C]` float32 and `query_y`
      `[T, ways*query_shots]` int32, all shapes static.
    """
    for name, value in (("ways", ways), ("shots", shots), ("query_shots", query_shots),
                        ("meta_batch_size", meta_batch_size)):
        arguments.check_size(name, value)
    arguments.check_int("seed", seed)
    if not isinstance(rotations, bool):
        raise ValueError(f"`rotations` must be a bool; received {rotations!r}.")
    table = image_table.load_image_table(
        source, preprocess=preprocess, image_size=arguments.check_image_size(image_size),
        tfds_split=tfds_split, data_dir=data_dir, image_key=image_key, label_key=label_key,
        group_by=group_by)
    labels = class_split.select_classes(table, classes, split, group_by)
    pool = ClassPool(table, labels)
    _check_task_fits(pool, ways, shots, query_shots, rotations)
    sample = episode_sampler(pool, ways=ways, shots=shots, query_shots=query_shots,
                             meta_batch_size=meta_batch_size, seed=seed, rotations=rotations)
    return stream.counter_stream(sample, start)


class ClassPool:
    """The images of the selected classes, grouped by class.

    Attributes:
      images: `[N, H, W, C]` float32, class by class.
      offsets, counts: `[K]` int32; class `k` is `images[offsets[k]:offsets[k] + counts[k]]`.
      labels: `[K]` the source labels of the classes.
    """

    def __init__(self, table, labels):
        keep = np.isin(table.labels, labels)
        order = np.argsort(table.labels[keep], kind="stable")
        self.images = table.images[keep][order]
        self.labels, counts = np.unique(table.labels[keep], return_counts=True)
        self.counts = counts.astype(np.int32)
        self.offsets = (np.cumsum(counts) - counts).astype(np.int32)

    @property
    def num_classes(self):
        return len(self.labels)


def _check_task_fits(pool, ways, shots, query_shots, rotations):
    num_classes = pool.num_classes * (QUARTER_TURNS if rotations else 1)
    if ways > num_classes:
        detail = f" ({pool.num_classes} × {QUARTER_TURNS} rotations)" if rotations else ""
        raise ValueError(
            f"`ways`={ways} exceeds the {num_classes} classes available{detail}; "
            f"use ways <= {num_classes} or select more classes."
        )
    smallest = int(np.argmin(pool.counts))
    if shots + query_shots > pool.counts[smallest]:
        raise ValueError(
            f"`shots` + `query_shots` = {shots + query_shots} exceeds the examples of class "
            f"{pool.labels[smallest]}, which has {pool.counts[smallest]} (the fewest of any "
            f"selected class; the most is {pool.counts.max()})."
        )
    height, width = pool.images.shape[1:3]
    if rotations and height != width:
        raise ValueError(f"`rotations` needs square images; they are {height}×{width}.")


def episode_sampler(pool, *, ways, shots, query_shots, meta_batch_size, seed, rotations):
    """The graph function `batch index -> (inputs, query_y)` over `pool`.

    With rotations, class `j` in `0..4K-1` is class `j % K` of the pool
    turned `j // K` quarter turns counter-clockwise (as `np.rot90`).
    """
    images = tf.constant(pool.images)
    offsets, counts = tf.constant(pool.offsets), tf.constant(pool.counts)
    num_classes = pool.num_classes
    per_class = shots + query_shots
    max_count = int(pool.counts.max())
    tasks = meta_batch_size

    def sample(index):
        keys = tf.random.experimental.stateless_split(
            tf.stack([tf.constant(seed, tf.int64), index]), num=4)
        class_scores = tf.random.stateless_uniform(
            (tasks, num_classes * (QUARTER_TURNS if rotations else 1)), keys[0])
        chosen = tf.math.top_k(class_scores, ways).indices  # [T, ways], distinct
        base, turns = chosen % num_classes, chosen // num_classes
        in_class = tf.range(max_count) < tf.gather(counts, base)[..., tf.newaxis]
        example_scores = tf.where(
            in_class, tf.random.stateless_uniform((tasks, ways, max_count), keys[1]), -1.0)
        picks = tf.math.top_k(example_scores, per_class).indices  # [T, ways, n], distinct
        drawn = tf.gather(images, tf.gather(offsets, base)[..., tf.newaxis] + picks)
        if rotations:
            drawn = _rotate(drawn, turns)
        labels = tf.broadcast_to(tf.range(ways)[tf.newaxis, :, tf.newaxis], (tasks, ways, per_class))
        support_x, support_y = _shuffled(drawn[:, :, :shots], labels[:, :, :shots], keys[2])
        query_x, query_y = _shuffled(drawn[:, :, shots:], labels[:, :, shots:], keys[3])
        inputs = {episode.SUPPORT_X: support_x, episode.SUPPORT_Y: support_y,
                  episode.QUERY_X: query_x}
        return inputs, query_y

    return sample


def _rotate(images, turns):
    """Turns `images` `[T, ways, n, H, H, C]` by `turns` `[T, ways]` quarter turns."""
    size = images.shape[3]
    grid = np.arange(size * size).reshape(size, size)
    sources = tf.constant(np.stack([np.rot90(grid, k).ravel() for k in range(QUARTER_TURNS)]),
                          tf.int32)  # [4, H*H]: source pixel of each output pixel
    flat = tf.reshape(images, (*images.shape[:3], size * size, images.shape[-1]))
    turned = tf.gather(flat, tf.gather(sources, turns), axis=3, batch_dims=2)
    return tf.reshape(turned, images.shape)


def _shuffled(images, labels, key):
    """Flattens `[T, ways, k, ...]` to `[T, ways*k, ...]` in a random order per task."""
    tasks, ways, k = labels.shape
    images = tf.reshape(images, (tasks, ways * k, *images.shape[3:]))
    labels = tf.reshape(labels, (tasks, ways * k))
    order = tf.argsort(tf.random.stateless_uniform((tasks, ways * k), key), axis=1)
    return tf.gather(images, order, batch_dims=1), tf.gather(labels, order, batch_dims=1)
