"""Metric learners: query scores from comparisons with the support set in
the embedding space (ProtoNet, MatchingNet, RelationNet)."""

import tensorflow as tf

from keras_meta.algorithms import embedding_model


class MetricModel(embedding_model.EmbeddingModel):
    """Base of ProtoNet, MatchingNet and RelationNet: an `EmbeddingModel`
    whose scores compare query embeddings with the support embeddings."""


def class_means(support, support_y, ways):
    """Mean support embedding of each class.

    Args:
      support: `[T, S, *embedding]`.
      support_y: `[T, S]` int labels.
      ways: number of classes.

    Returns:
      `[T, ways, *embedding]`.
    """
    one_hot = tf.one_hot(support_y, ways, dtype=support.dtype)          # [T, S, W]
    sums = tf.einsum("tsw,tsd->twd", one_hot, embedding_model.flatten_examples(support))
    means = sums / tf.reduce_sum(one_hot, axis=1)[..., None]
    return tf.reshape(means, [embedding_model.dims(support)[0], ways, *embedding_model.dims(support)[2:]])
