"""Prototypical Networks (Snell et al., 2017)."""

import math

import keras
import tensorflow as tf

from keras_meta import arguments
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
      learn_scale: if True, the scale is a trainable weight starting at
        `scale` (a learned temperature, Oreshkin et al. 2018), kept positive
        as `exp(log_scale)`.
      refinement_steps: steps of transductive refinement of the prototypes
        with the queries (Ren et al. 2018's soft k-means), in training and at
        test: each step gives every query a soft class assignment
        `p(k | q) = softmax_k(logits)` and resets each prototype to the mean
        of its support embeddings and the queries weighted by `p(k | q)`,
        `(Σ_s f(s) + Σ_q p(k | q) f(q)) / (n_k + Σ_q p(k | q))`. 0 (default):
        support means alone. Predictions then depend on the whole query set.
      eval_refinement_steps: refinement steps outside training (`evaluate`,
        `predict`, `call` with `training=False`); None (default): the same
        as `refinement_steps` (as MAML's `eval_inner_steps`).

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

    def __init__(self, embedding, distance=DISTANCES[0], scale=None, learn_scale=False,
                 refinement_steps=0, eval_refinement_steps=None, **kwargs):
        if distance not in DISTANCES:
            raise ValueError(f"`distance` must be one of {DISTANCES}; received {distance!r}.")
        if scale is None:
            scale = 1.0 if distance == "squared_euclidean" else 10.0
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"`scale` must be a number > 0; received {scale!r}.")
        arguments.check_bool("learn_scale", learn_scale)
        arguments.check_int("refinement_steps", refinement_steps, minimum=0)
        arguments.check_int("eval_refinement_steps", eval_refinement_steps, minimum=0,
                            allow_none=True)
        super().__init__(embedding, **kwargs)
        self.distance = distance
        self.scale = float(scale)
        self.learn_scale = learn_scale
        self.refinement_steps = refinement_steps
        self.eval_refinement_steps = (refinement_steps if eval_refinement_steps is None
                                      else eval_refinement_steps)
        if learn_scale:
            self.log_scale = self.add_weight(
                shape=(), name="log_scale", dtype=self.variable_dtype,
                initializer=keras.initializers.Constant(math.log(self.scale)))

    def logit_scale(self):
        """The factor of the logits: `scale`, or `exp(log_scale)` when learned."""
        if self.learn_scale:
            return tf.exp(tf.convert_to_tensor(self.log_scale.value))
        return self.scale

    def prototypes(self, support, support_y):
        """`[T, S, D]` support embeddings → `[T, ways, D]` prototypes."""
        return metric.class_means(support, support_y, embedding_model.num_ways(support_y))

    def refined(self, prototypes, support, support_y, query):
        """One soft k-means step: `[T, W, D]` prototypes, `[T, S, D]` support,
        `[T, S]` labels and `[T, Q, D]` query embeddings → `[T, W, D]`."""
        assignments = tf.nn.softmax(self.logits(query, prototypes), axis=-1)   # [T, Q, W]
        one_hot = tf.one_hot(support_y, tf.shape(prototypes)[1], dtype=support.dtype)
        sums = (tf.einsum("tsw,tsd->twd", one_hot, support)
                + tf.einsum("tqw,tqd->twd", assignments, query))
        counts = tf.reduce_sum(one_hot, axis=1) + tf.reduce_sum(assignments, axis=1)  # [T, W]
        return sums / counts[..., None]

    def logits(self, query, prototypes):
        """`[T, Q, D]` queries and `[T, W, D]` prototypes → `[T, Q, W]` logits."""
        if self.distance == "cosine":
            similarity = tf.einsum("tqd,twd->tqw", tf.math.l2_normalize(query, axis=-1),
                                   tf.math.l2_normalize(prototypes, axis=-1))
            return self.logit_scale() * similarity
        squared_distance = (
            tf.reduce_sum(query**2, axis=-1)[..., None]
            - 2.0 * tf.einsum("tqd,twd->tqw", query, prototypes)
            + tf.reduce_sum(prototypes**2, axis=-1)[:, None, :]
        )
        return -self.logit_scale() * squared_distance

    def adapt_and_predict(self, support_x, support_y, query_x, training=False):
        support, query = self.embed(support_x, query_x, training=training)
        support = embedding_model.flatten_examples(support)
        query = embedding_model.flatten_examples(query)
        prototypes = self.prototypes(support, support_y)
        steps = self.refinement_steps if training else self.eval_refinement_steps
        for _ in range(steps):
            prototypes = self.refined(prototypes, support, support_y, query)
        return self.logits(query, prototypes)

    def get_config(self):
        return {**super().get_config(), "distance": self.distance, "scale": self.scale,
                "learn_scale": self.learn_scale, "refinement_steps": self.refinement_steps,
                "eval_refinement_steps": self.eval_refinement_steps}
