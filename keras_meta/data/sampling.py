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
             tfds_split="train", data_dir=None, image_key="image", label_key="label", start=0,
             within_group=False, drawer_key=None):
    """An infinite, seeded stream of `ways`-way `shots`-shot episodes.

    Each task draws `ways` distinct classes without replacement, then
    `shots + query_shots` distinct examples of each: the first `shots` form
    the support set, the rest the query set, so the two never share an
    example. Classes are drawn in random order and labelled by that order,
    i.e. labels are a random permutation of `0..ways-1` per task; support and
    query examples are shuffled within their set.

    Two options give Lake et al.'s within-alphabet one-shot trials
    (`km.data.omniglot_episodes(..., within_alphabet=True)`):
    `within_group=True` draws every task of a batch from one group of
    `group_by` (one alphabet, chosen uniformly per batch), with `ways` capped
    at that group's number of classes, so batches from smaller groups have
    fewer ways (the dataset's ways dimension is then `None`); and
    `drawer_key` makes each task draw `shots + query_shots` distinct drawers:
    its support set is the first `shots` drawers' examples of every class,
    its query set the other drawers' examples of the same classes.

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
        such as `km.callbacks.AtomicBackupAndRestore(...).start_iteration`
        (resuming).
      within_group: if True, each batch's tasks come from one group of
        `group_by` (needs `group_by`).
      drawer_key: name of an integer feature saying who made each example
        (Omniglot's "drawer"), or None; every class needs exactly one example
        of each drawer.

    Returns:
      A `tf.data.Dataset` of `(inputs, query_y)`: `support_x`
      `[T, ways*shots, H, W, C]` float32, `support_y` `[T, ways*shots]` int32,
      `query_x` `[T, ways*query_shots, H, W, C]` float32 and `query_y`
      `[T, ways*query_shots]` int32, all shapes static (but the ways
      dimension under `within_group` when a group has fewer than `ways` classes).

    Example:

    ```python
    pairs = tf.data.Dataset.from_tensor_slices(
        (np.zeros((100, 8, 8, 1), "uint8"), np.repeat(np.arange(10), 10)))
    dataset = km.data.episodes(pairs, ways=5, shots=1, query_shots=2, meta_batch_size=4)
    inputs, query_y = next(iter(dataset))
    inputs["support_x"].shape, query_y.shape  # (4, 5, 8, 8, 1), (4, 10)
    ```
    """
    for name, value in (("ways", ways), ("shots", shots), ("query_shots", query_shots),
                        ("meta_batch_size", meta_batch_size)):
        arguments.check_size(name, value)
    arguments.check_int("seed", seed)
    for name, value in (("rotations", rotations), ("within_group", within_group)):
        if not isinstance(value, bool):
            raise ValueError(f"`{name}` must be a bool; received {value!r}.")
    if within_group and group_by is None:
        raise ValueError("`within_group=True` needs `group_by`, the feature naming the groups.")
    table = image_table.load_image_table(
        source, preprocess=preprocess, image_size=arguments.check_image_size(image_size),
        tfds_split=tfds_split, data_dir=data_dir, image_key=image_key, label_key=label_key,
        group_by=group_by, drawer_key=drawer_key)
    labels = class_split.select_classes(table, classes, split, group_by)
    pool = ClassPool(table, labels)
    _check_task_fits(pool, ways, shots, query_shots, rotations, within_group, drawer_key)
    sample = episode_sampler(pool, ways=ways, shots=shots, query_shots=query_shots,
                             meta_batch_size=meta_batch_size, seed=seed, rotations=rotations,
                             within_group=within_group)
    return stream.counter_stream(sample, start)


class ClassPool:
    """The images of the selected classes, grouped by class.

    Attributes:
      images: `[N, H, W, C]` float32, class by class.
      offsets, counts: `[K]` int32; class `k` is `images[offsets[k]:offsets[k] + counts[k]]`.
      labels: `[K]` the source labels of the classes.
      class_groups: `[K]` int32 group index (0..G-1) of each class, or None
        without groups.
      drawer_examples: `[K, D]` int32 index into `images` of class `k`'s
        example by drawer `d` (drawers numbered 0..D-1 in sorted order), -1
        where there is none, or None without drawers; `drawer_counts` `[K, D]`
        counts them.
    """

    def __init__(self, table, labels):
        keep = np.isin(table.labels, labels)
        order = np.argsort(table.labels[keep], kind="stable")
        self.images = table.images[keep][order]
        self.labels, counts = np.unique(table.labels[keep], return_counts=True)
        self.counts = counts.astype(np.int32)
        self.offsets = (np.cumsum(counts) - counts).astype(np.int32)
        class_of_example = np.repeat(np.arange(self.num_classes), counts)
        self.class_groups = self.drawer_examples = None
        if table.groups is not None:
            _, group_of_example = np.unique(table.groups[keep][order], return_inverse=True)
            self.class_groups = group_of_example[self.offsets].astype(np.int32)
        if table.drawers is not None:
            drawers, drawer_of_example = np.unique(table.drawers[keep][order],
                                                   return_inverse=True)
            self.drawer_examples = np.full((self.num_classes, len(drawers)), -1, np.int32)
            self.drawer_examples[class_of_example, drawer_of_example] = np.arange(len(order))
            self.drawer_counts = np.zeros_like(self.drawer_examples)
            np.add.at(self.drawer_counts, (class_of_example, drawer_of_example), 1)

    @property
    def num_classes(self):
        return len(self.labels)

    def group_sizes(self):
        """`[G]` classes per group."""
        return np.bincount(self.class_groups).astype(np.int32)


def _check_task_fits(pool, ways, shots, query_shots, rotations, within_group, drawer_key):
    turns = QUARTER_TURNS if rotations else 1
    num_classes = pool.num_classes * turns
    if ways > num_classes and not within_group:
        detail = f" ({pool.num_classes} × {QUARTER_TURNS} rotations)" if rotations else ""
        raise ValueError(
            f"`ways`={ways} exceeds the {num_classes} classes available{detail}; "
            f"use ways <= {num_classes} or select more classes."
        )
    if within_group and pool.group_sizes().min() * turns < 2:
        raise ValueError("`within_group=True` needs at least 2 classes in every selected group.")
    smallest = int(np.argmin(pool.counts))
    if shots + query_shots > pool.counts[smallest]:
        raise ValueError(
            f"`shots` + `query_shots` = {shots + query_shots} exceeds the examples of class "
            f"{pool.labels[smallest]}, which has {pool.counts[smallest]} (the fewest of any "
            f"selected class; the most is {pool.counts.max()})."
        )
    if drawer_key is not None:
        if (pool.drawer_counts != 1).any():
            k, d = np.argwhere(pool.drawer_counts != 1)[0]
            raise ValueError(
                f"`drawer_key`={drawer_key!r}: every class needs exactly one example of each "
                f"drawer; class {pool.labels[k]} has {pool.drawer_counts[k, d]} of drawer "
                f"number {d} (of {pool.drawer_examples.shape[1]}, in sorted order)."
            )
    height, width = pool.images.shape[1:3]
    if rotations and height != width:
        raise ValueError(f"`rotations` needs square images; they are {height}×{width}.")


def episode_sampler(pool, *, ways, shots, query_shots, meta_batch_size, seed, rotations,
                    within_group=False):
    """The graph function `batch index -> (inputs, query_y)` over `pool`.

    With rotations, class `j` in `0..4K-1` is class `j % K` of the pool
    turned `j // K` quarter turns counter-clockwise (as `np.rot90`). With
    `within_group`, a batch's tasks draw from one group; with
    `pool.drawer_examples`, a task's support and query sets come from
    distinct drawers shared by its classes (see `episodes`).
    """
    images = tf.constant(pool.images)
    num_classes = pool.num_classes
    turns_per_class = QUARTER_TURNS if rotations else 1
    per_class = shots + query_shots
    tasks = meta_batch_size
    choose_classes = (_within_group_chooser(pool, ways, tasks, turns_per_class) if within_group
                      else _class_chooser(num_classes * turns_per_class, ways, tasks))
    choose_examples = (_drawer_chooser(pool, per_class, tasks) if pool.drawer_examples is not None
                       else _example_chooser(pool, per_class, tasks))

    def sample(index):
        keys = tf.random.experimental.stateless_split(
            tf.stack([tf.constant(seed, tf.int64), index]), num=4)
        chosen = choose_classes(keys[0])  # [T, ways], distinct
        base, turns = chosen % num_classes, chosen // num_classes
        drawn = tf.gather(images, choose_examples(base, keys[1]))  # [T, ways, n, H, W, C]
        if rotations:
            drawn = _rotate(drawn, turns)
        task_ways = _size(chosen, 1)
        labels = tf.broadcast_to(tf.range(task_ways)[tf.newaxis, :, tf.newaxis],
                                 (tasks, task_ways, per_class))
        support_x, support_y = _shuffled(drawn[:, :, :shots], labels[:, :, :shots], keys[2])
        query_x, query_y = _shuffled(drawn[:, :, shots:], labels[:, :, shots:], keys[3])
        inputs = {episode.SUPPORT_X: support_x, episode.SUPPORT_Y: support_y,
                  episode.QUERY_X: query_x}
        return inputs, query_y

    return sample


def _class_chooser(num_classes, ways, tasks):
    """`key → [T, ways]` distinct classes of `0..num_classes-1` per task."""
    def choose(key):
        return tf.math.top_k(tf.random.stateless_uniform((tasks, num_classes), key), ways).indices
    return choose


def _within_group_chooser(pool, ways, tasks, turns_per_class):
    """`key → [T, ways']` distinct classes of one random group per batch,
    `ways' = min(ways, the group's classes)`; class `j` means class `j % K`
    turned `j // K` quarter turns."""
    class_groups = tf.constant(np.tile(pool.class_groups, turns_per_class))
    sizes = pool.group_sizes() * turns_per_class
    group_ways = tf.constant(np.minimum(sizes, ways))
    capped = bool((sizes < ways).any())

    def choose(key):
        group_key, class_key = tf.unstack(tf.random.experimental.stateless_split(key, num=2))
        group = tf.random.stateless_uniform((), group_key, 0, len(sizes), tf.int32)
        scores = tf.where(class_groups == group, tf.random.stateless_uniform(
            (tasks, class_groups.shape[0]), class_key), -1.0)
        return tf.math.top_k(scores, group_ways[group] if capped else ways).indices
    return choose


def _example_chooser(pool, per_class, tasks):
    """`(classes [T, W], key) → [T, W, per_class]` distinct examples of each class."""
    offsets, counts = tf.constant(pool.offsets), tf.constant(pool.counts)
    max_count = int(pool.counts.max())

    def choose(classes, key):
        in_class = tf.range(max_count) < tf.gather(counts, classes)[..., tf.newaxis]
        scores = tf.where(
            in_class, tf.random.stateless_uniform((tasks, _size(classes, 1), max_count), key), -1.0)
        picks = tf.math.top_k(scores, per_class).indices  # [T, W, n], distinct
        return tf.gather(offsets, classes)[..., tf.newaxis] + picks
    return choose


def _drawer_chooser(pool, per_class, tasks):
    """`(classes [T, W], key) → [T, W, per_class]`: per task, `per_class`
    distinct drawers, and each class's examples by them in that order."""
    drawer_examples = tf.constant(pool.drawer_examples)
    num_drawers = pool.drawer_examples.shape[1]

    def choose(classes, key):
        drawers = tf.math.top_k(tf.random.stateless_uniform((tasks, num_drawers), key),
                                per_class).indices  # [T, n]
        rows = tf.gather(drawer_examples, classes)  # [T, W, D]
        drawers = tf.broadcast_to(drawers[:, tf.newaxis], tf.concat(
            [tf.shape(classes), [per_class]], 0))
        return tf.gather(rows, drawers, batch_dims=2)
    return choose


def _size(tensor, axis):
    """`tensor`'s size along `axis`: an int where static, else a scalar tensor."""
    size = tensor.shape[axis]
    return size if size is not None else tf.shape(tensor)[axis]


def _rotate(images, turns):
    """Turns `images` `[T, ways, n, H, H, C]` by `turns` `[T, ways]` quarter turns."""
    tasks, _, per_class, size, _, channels = images.shape
    grid = np.arange(size * size).reshape(size, size)
    sources = tf.constant(np.stack([np.rot90(grid, k).ravel() for k in range(QUARTER_TURNS)]),
                          tf.int32)  # [4, H*H]: source pixel of each output pixel
    flat = tf.reshape(images, (tasks, -1, per_class, size * size, channels))
    turned = tf.gather(flat, tf.gather(sources, turns), axis=3, batch_dims=2)
    return tf.reshape(turned, (tasks, -1, per_class, size, size, channels))


def _shuffled(images, labels, key):
    """Flattens `[T, ways, k, ...]` to `[T, ways*k, ...]` in a random order per task."""
    tasks = labels.shape[0]
    images = tf.reshape(images, (tasks, -1, *images.shape[3:]))
    labels = tf.reshape(labels, (tasks, -1))
    order = tf.argsort(tf.random.stateless_uniform((tasks, _size(labels, 1)), key), axis=1)
    return tf.gather(images, order, batch_dims=1), tf.gather(labels, order, batch_dims=1)
