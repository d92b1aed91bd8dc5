"""Relation Networks (Sung et al., 2018)."""

import keras
import tensorflow as tf

from keras_meta.algorithms import embedding_model, metric

OBJECTIVES = ("mse", "crossentropy")


def default_relation_module(filters=64, hidden=8, name="relation_module"):
    """The paper's relation module: `[N, H, W, 2C]` feature-map pairs →
    `[N, 1]` relation logits.

    Two blocks of 3×3 convolution, batch norm, ReLU and 2×2 max-pooling
    ('same' padding, so small maps still fit), then a `hidden`-unit ReLU layer
    and one linear output (`RelationNet` applies the sigmoid).
    """
    layers = []
    for _ in range(2):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(2, padding="same"),
        ]
    layers += [keras.layers.Flatten(), keras.layers.Dense(hidden, activation="relu"),
               keras.layers.Dense(1)]
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="keras_meta")
class RelationMSE(keras.losses.Loss):
    """The Relation Network objective: mean squared error between relation
    scores `[T, Q, ways]` and the one-hot encoding of int labels `[T, Q]`.

    Args:
      name: the loss's name.
      **kwargs: as for any Keras loss (`reduction`, ...).

    Example:

    ```python
    loss = km.algorithms.RelationMSE()
    loss(np.array([[0, 1]]), np.array([[[1.0, 0.0], [0.5, 0.5]]]))  # (0 + 0.25 + 0.25 + 0) / 4
    ```
    """

    def __init__(self, name="relation_mse", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        one_hot = tf.one_hot(tf.cast(y_true, tf.int32), tf.shape(y_pred)[-1], dtype=y_pred.dtype)
        return tf.reduce_mean(tf.square(y_pred - one_hot), axis=-1)


@keras.saving.register_keras_serializable(package="keras_meta")
class RelationNet(metric.MetricModel):
    """Scores each query against each class with a learned relation module.

    A class's features are the mean of its support embeddings; the relation
    module reads each (class, query) pair, concatenated on the channel axis,
    and gives a relation logit. With `objective="mse"` (the paper) the
    model returns sigmoid relation scores in [0, 1], trained with
    `RelationMSE` against one-hot labels; with `objective="crossentropy"` it
    returns the relation logits, trained with
    `SparseCategoricalCrossentropy(from_logits=True)`. `default_loss()`
    gives the loss that matches the objective.

    Args:
      embedding: a Keras model `[N, *features]` → `[N, *embedding]` (feature
        maps `[N, H, W, C]` for the default relation module, e.g.
        `km.learners.conv4_embedding(pooled_blocks=2, flatten=False)`).
      relation_module: a Keras model `[N, *pair]` → `[N, 1]`, where `pair` is
        the embedding shape with twice the channels; default
        `default_relation_module()`.
      objective: `"mse"` or `"crossentropy"`.

    Inputs are episode dicts; outputs are `[T, Q, ways]` scores or logits.

    Example:

    ```python
    embedding = km.learners.conv4_embedding(pooled_blocks=2, flatten=False)
    model = km.RelationNet(embedding)  # objective="mse": compile with RelationMSE
    model.compile(optimizer="adam", loss=km.algorithms.RelationMSE(), metrics=["accuracy"])
    ```
    """

    def __init__(self, embedding, relation_module=None, objective="mse", **kwargs):
        if objective not in OBJECTIVES:
            raise ValueError(f"`objective` must be one of {OBJECTIVES}; received {objective!r}.")
        if relation_module is None:
            relation_module = default_relation_module()
        if not isinstance(relation_module, keras.Layer):
            raise ValueError(
                "`relation_module` must be a Keras model or layer (or None for the default); "
                f"received {type(relation_module).__name__}."
            )
        super().__init__(embedding, **kwargs)
        self.relation_module = relation_module
        self.objective = objective

    def build(self, input_shape):
        super().build(input_shape)
        embedding_shape = self.embedding.compute_output_shape((None, *self.feature_shape))[1:]
        pair_shape = (*embedding_shape[:-1], 2 * embedding_shape[-1])
        if not self.relation_module.built:
            self.relation_module.build((None, *pair_shape))
        output_shape = self.relation_module.compute_output_shape((None, *pair_shape))
        if tuple(output_shape[1:]) != (1,):
            raise ValueError(
                f"`relation_module` must map [N, {', '.join(map(str, pair_shape))}] pairs to "
                f"[N, 1] relation logits; its output shape is {output_shape}."
            )

    def default_loss(self):
        """The loss matching `objective`, for `compile(loss=...)`."""
        if self.objective == "mse":
            return RelationMSE()
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def relation_logits(self, support, support_y, query, training=False):
        """Relation logits `[T, Q, ways]` from support embeddings
        `[T, S, *embedding]` and query embeddings `[T, Q, *embedding]`."""
        classes = metric.class_means(support, support_y, embedding_model.num_ways(support_y))
        tasks, ways = embedding_model.dims(classes)[:2]
        queries = embedding_model.dims(query)[1]
        embedding_shape = embedding_model.dims(query)[2:]
        pair_shape = [tasks, queries, ways, *embedding_shape]
        pairs = tf.concat([
            tf.broadcast_to(classes[:, None], pair_shape),
            tf.broadcast_to(query[:, :, None], pair_shape),
        ], axis=-1)
        flat_pairs = tf.reshape(pairs, [-1, *embedding_model.dims(pairs)[3:]])
        logits = self.relation_module(flat_pairs, training=training)
        return tf.reshape(logits, [tasks, queries, ways])

    def adapt_and_predict(self, support_x, support_y, query_x, training=False):
        support, query = self.embed(support_x, query_x, training=training)
        logits = self.relation_logits(support, support_y, query, training=training)
        return tf.sigmoid(logits) if self.objective == "mse" else logits

    def get_config(self):
        return {
            **super().get_config(),
            "relation_module": keras.saving.serialize_keras_object(self.relation_module),
            "objective": self.objective,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["relation_module"] = keras.saving.deserialize_keras_object(
            config["relation_module"])
        return super().from_config(config)
