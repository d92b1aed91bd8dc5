"""Prototypical Networks (Snell et al., 2017)."""

import keras
import tensorflow as tf

from keras_meta.algorithms import embedding_model, metric

DISTANCES = ("squared_euclidean", "cosine")  # the first is the default


@keras.saving.register_keras_serializable(package="keras_meta")
class ProtoNet(metric.MetricModel):
    """Classifies each query by its distance to the class prototypes.

    A prototype is the mean support embedding of a class, `c_k`. The logit of
    class `k` for query `q` is `−scale · ‖f(q) − c_k‖²`
    (`distance="squared_euclidean"`) or `scale · cos(f(q), c_k)`
    (`distance="cosine"`). Any number of ways works at test time, more than
    in training included. Train with
    `SparseCategoricalCrossentropy(from_logits=True)`.

    Args:
      embedding: a Keras model `[N, *features]` → `[N, ...]` (flattened).
      distance: `"squared_euclidean"` or `"cosine"`.
      scale: multiplies the logits; default 1 for the Euclidean distance and
        10 for cosine (whose values lie in [−1, 1]).

    Inputs are episode dicts; outputs are logits `[T, Q, ways]`.

    Example:

    ```python
    model = km.ProtoNet(km.learners.conv4_embedding())
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    pairs = tf.data.Dataset.from_tensor_slices(
        (np.zeros((100, 28, 28, 1), "uint8"), np.repeat(np.arange(10), 10)))
    train = km.data.episodes(pairs, ways=5, shots=1, query_shots=2, meta_batch_size=2)
    model.fit(train, steps_per_epoch=1, epochs=1)
    ```
    """

    def __init__(self, embedding, distance=DISTANCES[0], scale=None, **kwargs):
        if distance not in DISTANCES:
            raise ValueError(f"`distance` must be one of {DISTANCES}; received {distance!r}.")
        if scale is None:
            scale = 1.0 if distance == "squared_euclidean" else 10.0
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"`scale` must be a number > 0; received {scale!r}.")
        super().__init__(embedding, **kwargs)
        self.distance = distance
        self.scale = float(scale)

    def prototypes(self, support, support_y):
        """`[T, S, D]` support embeddings → `[T, ways, D]` prototypes."""
        return metric.class_means(support, support_y, embedding_model.num_ways(support_y))

    def adapt_and_predict(self, support_x, support_y, query_x, training=False):
        support, query = self.embed(support_x, query_x, training=training)
        prototypes = self.prototypes(embedding_model.flatten_examples(support), support_y)
        query = embedding_model.flatten_examples(query)
        if self.distance == "cosine":
            similarity = tf.einsum("tqd,twd->tqw", tf.math.l2_normalize(query, axis=-1),
                                   tf.math.l2_normalize(prototypes, axis=-1))
            return self.scale * similarity
        squared_distance = (
            tf.reduce_sum(query**2, axis=-1)[..., None]
            - 2.0 * tf.einsum("tqd,twd->tqw", query, prototypes)
            + tf.reduce_sum(prototypes**2, axis=-1)[:, None, :]
        )
        return -self.scale * squared_distance

    def get_config(self):
        return {**super().get_config(), "distance": self.distance, "scale": self.scale}
