"""What the learners that embed examples share: one embedding network
applied to every support and query example of the meta-batch at once, and
classes given by the support labels.

No inner loop: these models vectorize over the task axis directly. The
number of ways is read from the support labels (`max(support_y) + 1`), so
one trained model serves any number of ways. The metric learners
(`metric.MetricModel`), SNAIL and LEO build on it.
"""

import tensorflow as tf

from keras_meta import batch_norm, episode, export
from keras_meta.meta_model import MetaModel


class EmbeddingModel(MetaModel):
    """Base of the models that embed every example with one network:
    ProtoNet, MatchingNet, RelationNet (through `MetricModel`), SNAIL and LEO.

    Args:
      embedding: a Keras model mapping `[N, *features]` to `[N, ...]`
        (vectors or feature maps).

    Batch norm in the embedding behaves as in any Keras model: batch
    statistics (over the support and query sets of the whole meta-batch)
    during `fit`, moving statistics otherwise. Under `tf.distribute` the
    batch statistics are all-reduced over the replicas' tasks, so they stay
    those of the whole global meta-batch
    (`batch_norm.global_batch_statistics`).
    """

    learner_argument = "embedding"

    def __init__(self, embedding, **kwargs):
        super().__init__(embedding, **kwargs)

    def call(self, inputs, training=False, **options):
        with batch_norm.global_batch_statistics(self):
            return super().call(inputs, training=training, **options)

    def export_endpoints(self, episode_specs):
        """`embed(x)`: `[N, *features]` → `[N, *embedding]`, the embedding
        network alone, in inference mode."""
        examples = episode_specs[episode.SUPPORT_X]
        spec = tf.TensorSpec((None, *examples.shape[2:]), examples.dtype, name="x")
        return {export.EMBED: (lambda x: self.embedding(x, training=False), [spec])}

    @property
    def embedding(self):
        """The embedding network (the `learner` of `MetaModel`)."""
        return self.learner

    def embed(self, support_x, query_x, training=False):
        """Embeds every example in one batch.

        Args:
          support_x: `[T, S, *features]`.
          query_x: `[T, Q, *features]`.

        Returns:
          `(support, query)`: `[T, S, *embedding]` and `[T, Q, *embedding]`.
        """
        tasks, shots = dims(support_x)[:2]
        queries = dims(query_x)[1]
        feature_shape = dims(support_x)[2:]
        flat = tf.concat([
            tf.reshape(support_x, [-1, *feature_shape]),
            tf.reshape(query_x, [-1, *feature_shape]),
        ], axis=0)
        embedded = self.embedding(flat, training=training)
        embedding_shape = dims(embedded)[1:]
        split = tasks * shots
        support = tf.reshape(embedded[:split], [tasks, shots, *embedding_shape])
        query = tf.reshape(embedded[split:], [tasks, queries, *embedding_shape])
        return support, query

    def check_labels(self, labels, name):
        """Labels must be ints, as `checked_class_labels` describes."""
        if not labels.dtype.is_integer:
            raise TypeError(
                f"{type(self).__name__} classifies: `{name}` must hold int labels; "
                f"received dtype {labels.dtype.name}."
            )
        return checked_class_labels(labels, name)


def dims(x):
    """The shape of `x` as a list: static sizes where known, else scalar tensors."""
    dynamic = tf.shape(x)
    return [size if size is not None else dynamic[i] for i, size in enumerate(x.shape.as_list())]


def checked_class_labels(labels, name):
    """Int `labels` `[T, N]` made to depend on run-time checks: labels >= 0,
    and for `support_y` every class `0..max(support_y)` present in each task
    (so labels lie below the support size, checked first: no label like
    2**31 - 1 ever sizes a one-hot tensor)."""
    checks = [tf.debugging.assert_non_negative(
        labels, message=f"{episode.ERROR_MARKER}`{name}` must hold labels >= 0")]
    if name == episode.SUPPORT_Y:
        checks.append(tf.debugging.assert_less(
            labels, tf.cast(tf.shape(labels)[1], labels.dtype),
            message=f"{episode.ERROR_MARKER}`support_y` must hold labels below the number of "
                    "support examples (each label 0..ways-1 appears at least once)"))
        with tf.control_dependencies(checks):
            counts = tf.reduce_sum(tf.one_hot(labels, num_ways(labels)), axis=1)
        checks.append(tf.debugging.assert_positive(
            counts,
            message=f"{episode.ERROR_MARKER}`support_y` of every task must hold each "
                    "label 0..ways-1 at least once (ways = max(support_y) + 1)",
        ))
    with tf.control_dependencies(checks):
        return tf.identity(labels)


def num_ways(support_y):
    """Number of classes of a batch of tasks, `max(support_y) + 1` (int32 scalar)."""
    return tf.cast(tf.reduce_max(support_y), tf.int32) + 1


def flatten_examples(embedded):
    """`[T, N, *embedding]` → `[T, N, D]`."""
    inner = embedded.shape[2:]
    size = inner.num_elements() if inner.is_fully_defined() else -1
    return tf.reshape(embedded, [*dims(embedded)[:2], size])
