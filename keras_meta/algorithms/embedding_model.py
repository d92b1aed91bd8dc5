"""What the learners that embed examples share: one embedding network
applied to every support and query example of the meta-batch at once, and
classes given by the support labels.

No inner loop: these models vectorize over the task axis directly. The
number of ways is read from the support labels (`max(support_y) + 1`), so
one trained model serves any number of ways. The metric learners
(`metric.MetricModel`), SNAIL and LEO build on it.
"""

import keras
import tensorflow as tf

from keras_meta import arguments, batch_norm, episode, export
from keras_meta.meta_model import MetaModel


class EmbeddingModel(MetaModel):
    """Base of the models that embed every example with one network:
    ProtoNet, MatchingNet, RelationNet (through `MetricModel`), SNAIL and LEO.

    Args:
      embedding: a Keras model mapping `[N, *features]` to `[N, ...]`
        (vectors or feature maps).
      embed_per_task: if True, `fit` embeds and differentiates one task of
        the meta-batch at a time (up to `parallel_tasks` at once) and
        averages their gradients, so the activations held are those of the
        tasks in flight, not of the whole meta-batch. Batch norm then
        normalises each task with its own statistics (as the ProtoNet paper's
        one-episode batches do), and its moving statistics take one update
        per step from the mean of the tasks'. Random layers (dropout) draw
        the same noise for every task of a step. Without batch norm and
        random layers the gradients equal the default path's.

    Batch norm in the embedding behaves as in any Keras model: batch
    statistics (over the support and query sets of the whole meta-batch,
    or of each task with `embed_per_task`) during `fit`, moving statistics
    otherwise. Under `tf.distribute` the whole meta-batch's statistics are
    all-reduced over the replicas' tasks, so they stay those of the whole
    global meta-batch (`batch_norm.global_batch_statistics`).
    """

    learner_argument = "embedding"

    def __init__(self, embedding, embed_per_task=False, **kwargs):
        arguments.check_bool("embed_per_task", embed_per_task)
        super().__init__(embedding, **kwargs)
        self.embed_per_task = embed_per_task

    def call(self, inputs, training=False, **options):
        if self.embed_per_task:  # statistics of one task: nothing to share between replicas
            return super().call(inputs, training=training, **options)
        with batch_norm.global_batch_statistics(self):
            return super().call(inputs, training=training, **options)

    def meta_gradients(self, x, y, sample_weight=None):
        """With `embed_per_task`, the mean over tasks of each task's gradient
        of `meta_loss` on that task alone; the moving statistics the tasks
        would set are averaged and assigned once."""
        if not self.embed_per_task:
            return super().meta_gradients(x, y, sample_weight)
        variables = self.trainable_variables
        state = [v for v in self.non_trainable_variables
                 if keras.backend.is_float_dtype(v.dtype)]
        inputs = episode.validate_inputs(x)
        keys = sorted(inputs)
        elements = [inputs[key] for key in keys] + [tf.convert_to_tensor(y)]
        if sample_weight is not None:
            elements.append(tf.convert_to_tensor(sample_weight))

        def task(*values):
            one = [v[None] for v in values]
            task_x, task_y = dict(zip(keys, one)), one[len(keys)]
            task_weight = one[len(keys) + 1] if sample_weight is not None else None
            with tf.GradientTape() as tape, keras.StatelessScope() as scope:
                predictions, loss = self.meta_loss(task_x, task_y, task_weight)
                scaled_loss = self.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled_loss, variables)
            grads = [tf.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(grads, variables)]
            moved = [scope.get_current_value(v) for v in state]
            moved = [tf.convert_to_tensor(v.value) if m is None else m for m, v in zip(moved, state)]
            return [predictions[0], self.in_variable_dtype(loss), *grads, *moved]

        signature = [tf.TensorSpec(None, self.variable_dtype),
                     tf.TensorSpec((), self.variable_dtype)]
        signature += [tf.TensorSpec(v.shape, v.dtype) for v in variables + state]
        y_pred, losses, *results = self.map_tasks(task, tuple(elements), signature)
        means = [tf.reduce_mean(r, axis=0) for r in results]
        grads, moving = means[:len(variables)], means[len(variables):]
        replica = tf.distribute.get_replica_context()
        if moving and replica is not None and replica.num_replicas_in_sync > 1:
            # Replicas hold equal shares of the tasks: the mean of their means.
            moving = replica.all_reduce(tf.distribute.ReduceOp.MEAN, moving)
        for variable, value in zip(state, moving):
            variable.assign(value)
        return grads, y_pred, tf.reduce_mean(losses)

    def get_config(self):
        return {**super().get_config(), "embed_per_task": self.embed_per_task}

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
          `(support, query)`: `[T, S, *embedding]` and `[T, Q, *embedding]`,
          in the model's variable dtype (float32 under a mixed policy), so
          that distances, attention and class means are computed in it.
        """
        tasks, shots = dims(support_x)[:2]
        queries = dims(query_x)[1]
        feature_shape = dims(support_x)[2:]
        flat = tf.concat([
            tf.reshape(support_x, [-1, *feature_shape]),
            tf.reshape(query_x, [-1, *feature_shape]),
        ], axis=0)
        embedded = self.in_variable_dtype(self.embedding(flat, training=training))
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
