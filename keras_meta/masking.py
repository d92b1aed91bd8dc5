"""Padded episodes: masks, and running each task on its real entries only.

Episodes of different sizes (`km.data.variable_episodes`) are padded to
fixed shapes so that they batch. Two optional keys of `inputs` say which
entries are real (True / 1) and which are padding (False / 0):

- `inputs["support_mask"]`: `[T, S]`, one flag per support example;
- `inputs["query_mask"]`: `[T, Q]`, one flag per query example.

A missing mask means "every entry is real". Padded support entries carry
any valid label (the samplers use 0); padded query targets carry sample
weight 0. A task's ways are `max(real support labels) + 1`; an episode
with fewer ways than the predictions' width has its absent classes'
logits set to `ABSENT_CLASS_LOGIT`, so that they count in no softmax.

How every `MetaModel` honours the masks (`MetaModel.call` and
`train_step`): each task is cut down to its real entries
(`tf.boolean_mask`) and run alone through the model's own forward pass
and meta-gradient, and its predictions are scattered back into the padded
query positions (zeros there). So padding changes nothing: batch
statistics, attention, sequence models, inner loops and losses all see
the unpadded task. Learners with a fixed output width (the MAML family,
SNAIL, `FineTune` without `num_classes`) read the task's ways from
`current_ways()` and mask the absent classes' logits in their inner loss.
"""

import contextlib
import threading

import tensorflow as tf

from keras_meta import episode

# Finite (no NaN in a softmax or its gradient), and exp(ABSENT - logit) is 0 in float32.
ABSENT_CLASS_LOGIT = -1e9

_settings = threading.local()


def has_masks(inputs):
    """Whether an episode dict carries a support or query mask.

    Args:
      inputs: an episode dict (or anything else: False).

    Returns:
      A bool.

    Example:

    ```python
    km.masking.has_masks({"support_x": x, "support_y": y, "query_x": q})  # False
    ```
    """
    return isinstance(inputs, dict) and any(key in inputs for key in episode.MASK_KEYS)


@contextlib.contextmanager
def task_ways(ways):
    """Within this context, `current_ways()` is `ways` (a scalar int
    tensor, or None): the number of classes of the task being traced.

    Args:
      ways: the task's number of classes, or None (regression).

    Example:

    ```python
    with km.masking.task_ways(tf.constant(3)):
        km.masking.current_ways()  # 3
    ```
    """
    previous = getattr(_settings, "ways", None)
    _settings.ways = ways
    try:
        yield
    finally:
        _settings.ways = previous


def current_ways():
    """The ways of the padded task being traced (see `task_ways`), or None.

    Args:
      (none)

    Returns:
      A scalar int32 tensor, or None outside a padded task.

    Example:

    ```python
    km.masking.current_ways()  # None outside `task_ways`
    ```
    """
    return getattr(_settings, "ways", None)


def mask_absent_classes(logits, ways):
    """`logits` `[..., W]` with the columns `>= ways` set to `ABSENT_CLASS_LOGIT`.

    Args:
      logits: `[..., W]` float scores.
      ways: a scalar int (tensor), or None (returns `logits` unchanged).

    Returns:
      `[..., W]`; the absent columns carry no gradient.

    Example:

    ```python
    km.masking.mask_absent_classes(tf.zeros([2, 4]), 3)  # last column -1e9
    ```
    """
    if ways is None:
        return logits
    width = tf.shape(logits)[-1]
    present = tf.range(width) < tf.cast(ways, tf.int32)
    return tf.where(present, logits, tf.constant(ABSENT_CLASS_LOGIT, logits.dtype))


def pad_classes(logits, width):
    """`logits` `[..., w]` padded with `ABSENT_CLASS_LOGIT` columns up to
    `width` (unchanged when `w >= width`).

    Args:
      logits: `[..., w]`.
      width: scalar int (tensor).

    Returns:
      `[..., max(w, width)]`.

    Example:

    ```python
    km.masking.pad_classes(tf.zeros([2, 3]), 5).shape  # (2, 5)
    ```
    """
    missing = tf.maximum(tf.cast(width, tf.int32) - tf.shape(logits)[-1], 0)
    rank = logits.shape.rank
    paddings = tf.concat([tf.zeros([rank - 1, 2], tf.int32), [[0, missing]]], axis=0)
    return tf.pad(logits, paddings, constant_values=ABSENT_CLASS_LOGIT)


def scatter_rows(values, mask, axis=0):
    """The rows of `values` along `axis` placed at the True entries of
    `mask`, zeros elsewhere: the inverse of `tf.boolean_mask` on one task.

    Args:
      values: `[..., n, ...]` with `n` = the number of True entries, on `axis`.
      mask: `[N]` bool.
      axis: the axis of `values` that holds the rows.

    Returns:
      `values` with `axis` of size `N`.

    Example:

    ```python
    km.masking.scatter_rows(tf.ones([2, 3]), tf.constant([True, False, True]))  # [[1,1,1],[0,0,0],[1,1,1]]
    ```
    """
    rank = values.shape.rank
    order = [axis] + [i for i in range(rank) if i != axis]
    moved = tf.transpose(values, order) if axis else values
    shape = tf.concat([tf.shape(mask, out_type=tf.int64), tf.shape(moved, out_type=tf.int64)[1:]],
                      axis=0)
    scattered = tf.scatter_nd(tf.where(mask), moved, shape)
    if not axis:
        return scattered
    inverse = [order.index(i) for i in range(rank)]
    return tf.transpose(scattered, inverse)


def query_weights(query_mask, dtype=tf.float32):
    """Sample weights `[T, Q]` of padded query targets: 0 for padding, and
    `Q / (real queries of the task)` for a real entry, so that a loss or
    metric averaged with them over `[T, Q]` is the mean over tasks of each
    task's mean over its real queries (the unpadded value when the tasks
    have equally many).

    Args:
      query_mask: `[T, Q]` bool.
      dtype: the weights' dtype.

    Returns:
      `[T, Q]` weights.

    Example:

    ```python
    km.masking.query_weights(tf.constant([[True, False], [True, True]]))  # [[2, 0], [1, 1]]
    ```
    """
    mask = tf.cast(query_mask, dtype)
    counts = tf.reduce_sum(mask, axis=1, keepdims=True)
    return mask * tf.cast(tf.shape(mask)[1], dtype) / tf.maximum(counts, 1.0)


def task_num_ways(support_y, support_mask):
    """Ways of one task: `max(real support labels) + 1` (int32 scalar).

    Args:
      support_y: `[S]` int labels.
      support_mask: `[S]` bool.

    Returns:
      A scalar int32 tensor.

    Example:

    ```python
    km.masking.task_num_ways(tf.constant([0, 2, 4]), tf.constant([True, True, False]))  # 3
    ```
    """
    labels = tf.where(support_mask, tf.cast(support_y, tf.int32), -1)
    return tf.reduce_max(labels) + 1


def masks_of(inputs):
    """`(support_mask, query_mask)` `[T, S]`, `[T, Q]` bool of a validated
    episode dict, all-True where a mask is missing.

    Args:
      inputs: an episode dict of tensors (`episode.validate_inputs`).

    Returns:
      Two bool tensors.

    Example:

    ```python
    support_mask, query_mask = km.masking.masks_of(inputs)
    ```
    """
    masks = []
    for key, examples in ((episode.SUPPORT_MASK, episode.SUPPORT_X),
                          (episode.QUERY_MASK, episode.QUERY_X)):
        if key in inputs:
            masks.append(inputs[key])
        else:
            masks.append(tf.ones(tf.shape(inputs[examples])[:2], tf.bool))
    return tuple(masks)
