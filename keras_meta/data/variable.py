"""Meta-Dataset-style episodes: variable ways, variable and imbalanced shots.

The sampling of Triantafillou et al. (2020), "Meta-Dataset", section 3.2,
with its default settings:

1. ways `N` uniform in `[min_ways, min(max_ways, classes of the source)]`,
   classes drawn uniformly without replacement;
2. query examples per class `q = min(max_query_per_class,
   min over the chosen classes of floor(count_c / 2))`, the same for every
   class; `remaining_c = count_c - q`;
3. support size `|S| = min(max_support_size,
   Σ_c ceil(β · min(max_support_per_class, remaining_c)))`, β uniform in
   (0, 1] (drawn as `floor(β' · x + 1)`, β' in [0, 1), as the reference does);
4. support shots `n_c = min(remaining_c, floor(p_c · (|S| − N)) + 1)`,
   `p_c ∝ count_c · exp(α_c)`, α_c uniform in `[log 0.5, log 2]`: at least
   one per class, the rest shared roughly by class frequency with noise.

With several sources, each episode first draws its source (uniformly, or
by `source_weights`) and all its classes come from it.

Episodes are padded to fixed shapes with masks (`keras_meta.masking`):
`support_x` `[T, S_max, ...]`, `support_mask` `[T, S_max]`, `query_x`
`[T, Q_max, ...]`, `query_mask` `[T, Q_max]`; padded images are zeros and
padded labels 0. Everything is drawn inside `tf.data` by stateless random
ops: batch `i` is a pure function of `(seed, i)`.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from keras_meta import arguments, episode
from keras_meta.data import class_split, image_table, stream
from keras_meta.data.sampling import ClassPool

LOG_WEIGHT_RANGE = (math.log(0.5), math.log(2.0))


class _Pools:
    """The classes of every source in one table: `images`, `offsets`,
    `counts` `[K]` and `sources` `[K]` (the source index of each class)."""

    def __init__(self, pools):
        shapes = {pool.images.shape[1:] for pool in pools}
        if len(shapes) > 1:
            raise ValueError("`sources` must give images of one shape (set `image_size`); "
                             f"received shapes {sorted(shapes)}.")
        self.images = np.concatenate([pool.images for pool in pools])
        starts = np.cumsum([0] + [len(pool.images) for pool in pools])[:-1]
        self.offsets = np.concatenate([pool.offsets + start for pool, start in zip(pools, starts)])
        self.counts = np.concatenate([pool.counts for pool in pools]).astype(np.int32)
        self.sources = np.concatenate([np.full(pool.num_classes, i, np.int32)
                                       for i, pool in enumerate(pools)])
        self.num_classes = np.array([pool.num_classes for pool in pools], np.int32)


def padded_sizes(counts, num_classes, *, min_ways, max_ways, max_query_per_class,
                 max_support_size, max_support_per_class):
    """`(ways, support, query)`: the padded widths that hold every episode
    the formulas can draw from classes of `counts` (one array per source).

    Args:
      counts: a list of `[K_s]` int arrays, the examples per class of each source.
      num_classes: unused but for checks: the classes per source.
      min_ways, max_ways, max_query_per_class, max_support_size,
        max_support_per_class: as for `variable_episodes`.

    Returns:
      Three ints.

    Example:

    ```python
    padded_sizes([np.full(20, 30)], [20], min_ways=5, max_ways=50, max_query_per_class=10,
                 max_support_size=500, max_support_per_class=100)  # (20, 500, 200)
    ```
    """
    ways = max(min(max_ways, len(c)) for c in counts)
    query = max(min(max_query_per_class, int(c.max()) // 2) for c in counts)
    support = 0
    for c in counts:
        largest = np.sort(np.minimum(max_support_per_class, c - 1))[::-1][:min(max_ways, len(c))]
        support = max(support, int(largest.sum()))
    del num_classes
    return ways, min(max_support_size, support), ways * query


def variable_episodes(sources, *, meta_batch_size, classes=None, split=None, group_by=None,
                      source_weights=None, min_ways=5, max_ways=50, max_query_per_class=10,
                      max_support_size=500, max_support_per_class=100,
                      log_weight_range=LOG_WEIGHT_RANGE, seed=0, image_size=None,
                      preprocess=None, tfds_split="train", data_dir=None, image_key="image",
                      label_key="label", start=0, augment=None):
    """An infinite, seeded stream of Meta-Dataset-style padded episodes.

    See the module docstring for the sampling formulas. Support and query
    never share an example; labels are `0..N-1` in a random class order;
    real entries come first in each padded set, in a random order.

    Args:
      sources: one source (a TFDS name or a `tf.data.Dataset` of
        `(image, label)` or feature dicts, as for `km.data.episodes`) or a
        list of them (multi-source: each episode draws one).
      meta_batch_size: tasks per dataset element, `T`.
      classes, split, group_by: the class split (as `km.data.episodes`);
        with several sources, each may be a list with one entry per source.
      source_weights: probabilities of the sources (default uniform).
      min_ways, max_ways: the range of ways (5 and 50 in the paper).
      max_query_per_class: the cap on query examples per class (10).
      max_support_size: the cap on the support size (500).
      max_support_per_class: the cap on a class's contribution to the
        support size (100).
      log_weight_range: `(low, high)` of the class imbalance log-weights α.
      seed: int; the same seed gives the same episodes.
      image_size, preprocess, tfds_split, data_dir, image_key, label_key:
        as for `km.data.episodes` (one value for every source).
      start: index of the first batch (resuming).
      augment: None, or a `km.data.augment.EpisodeAugmentation` applied to
        each batch with a key drawn from `(seed, batch index)`.

    Returns:
      A `tf.data.Dataset` of `(inputs, query_y)`: `support_x` `[T, S, H, W, C]`,
      `support_y` `[T, S]` int32, `support_mask` `[T, S]` bool, `query_x`
      `[T, Q, H, W, C]`, `query_mask` `[T, Q]` bool, `query_y` `[T, Q]` int32,
      `S`, `Q` the padded sizes of `padded_sizes`.

    Example:

    ```python
    pairs = tf.data.Dataset.from_tensor_slices(
        (np.zeros((400, 8, 8, 1), "uint8"), np.repeat(np.arange(20), 20)))
    train = km.data.variable_episodes(pairs, meta_batch_size=2, max_ways=10,
                                      max_support_size=50, seed=0)
    inputs, query_y = next(iter(train))
    inputs["support_mask"].shape  # (2, 50)
    ```
    """
    many = isinstance(sources, (list, tuple))
    source_list = list(sources) if many else [sources]
    if not source_list:
        raise ValueError("`sources` must name at least one source; received an empty list.")
    per_source = {name: _per_source(name, value, len(source_list), many)
                  for name, value in (("classes", classes), ("split", split),
                                      ("group_by", group_by))}
    arguments.check_size("meta_batch_size", meta_batch_size)
    for name, value in (("min_ways", min_ways), ("max_ways", max_ways),
                        ("max_query_per_class", max_query_per_class),
                        ("max_support_size", max_support_size),
                        ("max_support_per_class", max_support_per_class)):
        arguments.check_int(name, value, minimum=1)
    if max_ways < min_ways:
        raise ValueError(f"`max_ways` ({max_ways}) must be >= `min_ways` ({min_ways}).")
    if max_support_size < max_ways:
        raise ValueError(f"`max_support_size` ({max_support_size}) must be >= `max_ways` "
                         f"({max_ways}): every class needs a support example.")
    low, high = _check_log_weights(log_weight_range)
    arguments.check_int("seed", seed)
    weights = _check_source_weights(source_weights, len(source_list))
    pools = []
    for i, source in enumerate(source_list):
        table = image_table.load_image_table(
            source, preprocess=preprocess, image_size=arguments.check_image_size(image_size),
            tfds_split=tfds_split, data_dir=data_dir, image_key=image_key, label_key=label_key,
            group_by=per_source["group_by"][i])
        labels = class_split.select_classes(table, per_source["classes"][i],
                                            per_source["split"][i], per_source["group_by"][i])
        pool = ClassPool(table, labels)
        where = f" of source {i}" if many else ""
        if pool.num_classes < min_ways:
            raise ValueError(f"`min_ways`={min_ways} exceeds the {pool.num_classes} classes"
                             f"{where}; lower `min_ways` or select more classes.")
        if pool.counts.min() < 2:
            raise ValueError(f"every class{where} needs at least 2 examples (a support and a "
                             f"query example); class {pool.labels[np.argmin(pool.counts)]} has "
                             f"{pool.counts.min()}.")
        pools.append(pool)
    sample = variable_sampler(
        _Pools(pools), meta_batch_size=meta_batch_size, min_ways=min_ways, max_ways=max_ways,
        max_query_per_class=max_query_per_class, max_support_size=max_support_size,
        max_support_per_class=max_support_per_class, log_weight_range=(low, high), seed=seed,
        source_weights=weights, augment=augment)
    return stream.counter_stream(sample, start)


def _per_source(name, value, count, many):
    """`value` for each of `count` sources: a list with one entry per
    source (for `classes`, a list whose entries are collections or None),
    else `value` for every source."""
    per = many and isinstance(value, list) and (
        name != "classes" or all(v is None or isinstance(v, (list, tuple, dict, np.ndarray))
                                 for v in value))
    if not per:
        return [value] * count
    if len(value) != count:
        raise ValueError(f"`{name}` must have one entry per source ({count}); received "
                         f"{len(value)}.")
    return list(value)


def _check_log_weights(log_weight_range):
    try:
        low, high = (float(v) for v in log_weight_range)
    except (TypeError, ValueError):
        raise ValueError("`log_weight_range` must be a pair (low, high) of numbers; received "
                         f"{log_weight_range!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"`log_weight_range` must be finite with low <= high; received "
                         f"{log_weight_range!r}.")
    return low, high


def _check_source_weights(source_weights, count):
    if source_weights is None:
        return np.full(count, 1.0 / count)
    weights = np.asarray(source_weights, np.float64)
    if weights.shape != (count,) or not np.all(np.isfinite(weights)) or (weights < 0).any() \
            or weights.sum() <= 0:
        raise ValueError(f"`source_weights` must be {count} non-negative numbers (one per "
                         f"source) with a positive sum; received {source_weights!r}.")
    return weights / weights.sum()


def variable_sampler(pools, *, meta_batch_size, min_ways, max_ways, max_query_per_class,
                     max_support_size, max_support_per_class, log_weight_range, seed,
                     source_weights, augment=None):
    """The graph function `batch index → (inputs, query_y)` of `variable_episodes`."""
    counts_np = [pools.counts[pools.sources == s] for s in range(len(pools.num_classes))]
    ways_pad, support_pad, query_pad = padded_sizes(
        counts_np, pools.num_classes, min_ways=min_ways, max_ways=max_ways,
        max_query_per_class=max_query_per_class, max_support_size=max_support_size,
        max_support_per_class=max_support_per_class)
    query_per_class_pad = query_pad // ways_pad
    max_count = int(pools.counts.max())
    shots_pad = min(max_count - 1, support_pad)
    images = tf.constant(pools.images)
    counts = tf.constant(pools.counts)
    offsets = tf.constant(pools.offsets.astype(np.int32))
    class_sources = tf.constant(pools.sources)
    ways_high = tf.constant(np.minimum(max_ways, pools.num_classes).astype(np.int32))
    source_logits = tf.constant(np.log(np.maximum(source_weights, 1e-300))[None], tf.float32)
    tasks = meta_batch_size
    num_all = int(pools.counts.shape[0])
    low, high = log_weight_range

    def sample(index):
        keys = tf.unstack(tf.random.experimental.stateless_split(
            tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)]), num=10))
        # 1. the source and the ways.
        if len(source_weights) > 1:
            source = tf.cast(tf.random.stateless_categorical(
                tf.repeat(source_logits, tasks, axis=0), 1, keys[0])[:, 0], tf.int32)
        else:
            source = tf.zeros([tasks], tf.int32)
        high_ways = tf.gather(ways_high, source)
        ways = min_ways + tf.cast(tf.math.floor(
            tf.random.stateless_uniform([tasks], keys[1])
            * tf.cast(high_ways - min_ways + 1, tf.float32)), tf.int32)
        ways = tf.minimum(ways, high_ways)
        # 2. classes: a uniform subset of the source's (the top `ways` scores).
        scores = tf.where(class_sources[None] == source[:, None],
                          tf.random.stateless_uniform([tasks, num_all], keys[2]), -1.0)
        chosen = tf.math.top_k(scores, ways_pad).indices                        # [T, W]
        present = tf.range(ways_pad)[None] < ways[:, None]                      # [T, W]
        class_counts = tf.gather(counts, chosen)
        # 3. query shots per class, the same for every class of the task.
        halves = tf.where(present, class_counts // 2, max_count)
        query_shots = tf.minimum(max_query_per_class, tf.reduce_min(halves, axis=1))  # [T]
        remaining = class_counts - query_shots[:, None]
        # 4. the support size.
        beta = tf.random.stateless_uniform([tasks, 1], keys[3])
        contributions = tf.cast(tf.minimum(max_support_per_class, remaining), tf.float32)
        size = tf.reduce_sum(tf.where(present, tf.math.floor(beta * contributions + 1.0), 0.0),
                             axis=1)
        size = tf.minimum(size, float(max_support_size))                       # [T]
        # 5. support shots per class, imbalanced.
        alpha = tf.random.stateless_uniform([tasks, ways_pad], keys[4], low, high)
        unnormalized = tf.where(present, tf.cast(class_counts, tf.float32) * tf.exp(alpha), 0.0)
        proportions = unnormalized / tf.reduce_sum(unnormalized, axis=1, keepdims=True)
        extra = size - tf.cast(ways, tf.float32)
        shots = tf.cast(tf.math.floor(proportions * extra[:, None]), tf.int32) + 1
        shots = tf.where(present, tf.minimum(shots, remaining), 0)             # [T, W]
        # 6. examples: a random order of each class's; support first, then query.
        in_class = tf.range(max_count)[None, None] < class_counts[..., None]
        order = tf.math.top_k(tf.where(in_class, tf.random.stateless_uniform(
            [tasks, ways_pad, max_count], keys[5]), -1.0), max_count).indices   # [T, W, M]
        examples = tf.gather(offsets, chosen)[..., None] + order
        labels = tf.broadcast_to(tf.range(ways_pad)[None, :, None], [tasks, ways_pad, max_count])
        support_slot = tf.range(shots_pad)[None, None]
        support = _padded_set(examples[:, :, :shots_pad], labels[:, :, :shots_pad],
                              support_slot < shots[..., None], support_pad, keys[6])
        query_slot = tf.range(query_per_class_pad)[None, None]
        query_positions = tf.minimum(shots[..., None] + query_slot, max_count - 1)
        query_real = tf.logical_and(present[..., None], query_slot < query_shots[:, None, None])
        query = _padded_set(tf.gather(examples, query_positions, batch_dims=2),
                            labels[:, :, :query_per_class_pad], query_real, query_pad, keys[7])
        inputs = {}
        for (x_key, y_key, mask_key), (indices, set_labels, mask) in (
                ((episode.SUPPORT_X, episode.SUPPORT_Y, episode.SUPPORT_MASK), support),
                ((episode.QUERY_X, None, episode.QUERY_MASK), query)):
            pictures = tf.gather(images, indices)
            inputs[x_key] = tf.where(
                tf.reshape(mask, [tasks, -1] + [1] * (len(pools.images.shape) - 1)),
                pictures, tf.zeros([], pictures.dtype))
            inputs[mask_key] = mask
            if y_key is not None:
                inputs[y_key] = set_labels
            else:
                query_y = set_labels
        if augment is not None:
            inputs = augment(inputs, keys[8])
        return inputs, query_y

    return sample


def _padded_set(indices, labels, real, size, key):
    """`[T, W, k]` example indices, labels and real flags → `(indices, labels,
    mask)` `[T, size]`: the real entries first in a random order, then
    padding (index 0, label 0, mask False)."""
    tasks = labels.shape[0]
    flat_indices = tf.reshape(indices, [tasks, -1])
    flat_labels = tf.reshape(labels, [tasks, -1])
    flat_real = tf.reshape(real, [tasks, -1])
    width = flat_real.shape[1]
    noise = tf.random.stateless_uniform([tasks, width], key)
    keys = tf.where(flat_real, noise, 2.0 + noise)
    order = tf.argsort(keys, axis=1)
    if width < size:
        order = tf.concat([order, tf.fill([tasks, size - width], width)], axis=1)
        flat_indices = tf.concat([flat_indices, tf.zeros([tasks, 1], flat_indices.dtype)], 1)
        flat_labels = tf.concat([flat_labels, tf.zeros([tasks, 1], flat_labels.dtype)], 1)
        flat_real = tf.concat([flat_real, tf.zeros([tasks, 1], tf.bool)], 1)
    order = order[:, :size]
    mask = tf.gather(flat_real, order, batch_dims=1)
    picked = tf.where(mask, tf.gather(flat_indices, order, batch_dims=1), 0)
    picked_labels = tf.where(mask, tf.gather(flat_labels, order, batch_dims=1), 0)
    return picked, picked_labels, mask
