"""SNAIL, the simple neural attentive meta-learner (Mishra, Rohaninejad,
Chen & Abbeel, 2018)."""

import math

import keras
import tensorflow as tf

from keras_meta import arguments, episode
from keras_meta.algorithms import embedding_model


class CausalDenseBlock(keras.layers.Layer):
    """`[B, L, C]` → `[B, L, C + filters]`: the input and the gated activation
    `tanh(conv_f(x)) ⊙ σ(conv_g(x))` of two causal convolutions (kernel 2,
    dilation `dilation`), so output `t` reads inputs `t` and `t − dilation`."""

    def __init__(self, dilation, filters, **kwargs):
        super().__init__(**kwargs)
        self.added_channels = filters
        self.filter_conv = keras.layers.Conv1D(filters, 2, dilation_rate=dilation, padding="causal")
        self.gate_conv = keras.layers.Conv1D(filters, 2, dilation_rate=dilation, padding="causal")

    def build(self, input_shape):
        self.filter_conv.build(input_shape)
        self.gate_conv.build(input_shape)

    def call(self, x):
        activation = tf.tanh(self.filter_conv(x)) * tf.sigmoid(self.gate_conv(x))
        return tf.concat([x, activation], axis=-1)


class CausalAttentionBlock(keras.layers.Layer):
    """`[B, L, C]` → `[B, L, C + value_size]`: the input and a causal soft
    attention read, position `t` attending to positions `0..t` with
    scaled dot-product weights."""

    def __init__(self, key_size, value_size, **kwargs):
        super().__init__(**kwargs)
        self.key_size = key_size
        self.added_channels = value_size
        self.query_layer = keras.layers.Dense(key_size)
        self.key_layer = keras.layers.Dense(key_size)
        self.value_layer = keras.layers.Dense(value_size)

    def build(self, input_shape):
        for layer in (self.query_layer, self.key_layer, self.value_layer):
            layer.build(input_shape)

    def call(self, x):
        logits = tf.einsum("bik,bjk->bij", self.query_layer(x), self.key_layer(x))
        logits /= math.sqrt(self.key_size)
        length = tf.shape(x)[1]
        earlier = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)  # j <= i
        logits = tf.where(earlier, logits, tf.constant(logits.dtype.min, logits.dtype))
        read = tf.matmul(tf.nn.softmax(logits, axis=-1), self.value_layer(x))
        return tf.concat([x, read], axis=-1)


def dilations(sequence_length):
    """Dilations of a TC block that covers `sequence_length`: 1, 2, 4, …,
    `2^(⌈log2 L⌉ − 1)`."""
    return [2**i for i in range(max(1, math.ceil(math.log2(sequence_length))))]


@keras.saving.register_keras_serializable(package="keras_meta")
class SNAIL(embedding_model.EmbeddingModel):
    """SNAIL: a causal sequence model reads the support set and labels each query.

    Each query is classified from the sequence of the support examples
    (embedding concatenated with the one-hot label) followed by the query
    (embedding, blank label). The sequence model interleaves causal soft
    attention blocks with TC blocks of `CausalDenseBlock`s (dilations 1, 2,
    4, … covering the sequence) and ends in a linear layer to `ways` logits,
    read at the query's position. Every query gets its own sequence, so
    queries never see each other; position `t` sees positions `0..t` only.
    The paper's Omniglot network (`attention=((64, 32), (256, 128), (512,
    256))`, `filters=128`) is the default. The embedding's batch norm
    behaves as in `EmbeddingModel` (batch statistics during `fit`).

    Args:
      embedding: a Keras model `[N, *features]` → `[N, ...]` (flattened).
      ways: number of classes (labels `0..ways-1`).
      shots: support examples per class the TC blocks are sized for (any
        support size works; the receptive field covers `ways · shots + 1`).
      filters: channels of each dense block.
      attention: `(key_size, value_size)` of each attention block; a TC block
        sits between consecutive attention blocks.

    Inputs are episode dicts; outputs are logits `[T, Q, ways]`.

    Example:

    ```python
    model = km.SNAIL(km.learners.conv4_embedding(), ways=5, shots=1)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    ```
    """

    def __init__(self, embedding, ways=5, shots=1, filters=128,
                 attention=((64, 32), (256, 128), (512, 256)), **kwargs):
        for name, value in (("ways", ways), ("shots", shots), ("filters", filters)):
            arguments.check_int(name, value, minimum=1)
        if not isinstance(attention, (list, tuple)) or not attention or not all(
                isinstance(sizes, (list, tuple)) and len(sizes) == 2
                and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes)
                for sizes in attention):
            raise ValueError("`attention` must be a non-empty list of (key_size, value_size) "
                             f"pairs of positive ints; received {attention!r}.")
        super().__init__(embedding, **kwargs)
        self.ways = ways
        self.shots = shots
        self.filters = filters
        self.attention = [list(sizes) for sizes in attention]
        blocks = [CausalAttentionBlock(*self.attention[0])]
        for sizes in self.attention[1:]:
            blocks += [CausalDenseBlock(d, filters) for d in dilations(ways * shots + 1)]
            blocks.append(CausalAttentionBlock(*sizes))
        self.blocks = blocks
        self.classifier = keras.layers.Dense(ways, name="classifier")

    def build(self, input_shape):
        super().build(input_shape)
        channels = math.prod(self.learner_output_shape[1:]) + self.ways
        for block in self.blocks:
            block.build((None, None, channels))
            channels += block.added_channels
        self.classifier.build((None, None, channels))

    @property
    def num_outputs(self):
        return self.ways

    def check_labels(self, labels, name):
        """`EmbeddingModel`'s checks, and labels below `ways`."""
        labels = super().check_labels(labels, name)
        return episode.checked_labels(labels, self.ways, name)

    def sequence_logits(self, sequence):
        """The sequence model: `[B, L, D + ways]` → logits at every position `[B, L, ways]`."""
        for block in self.blocks:
            sequence = block(sequence)
        return self.classifier(sequence)

    def adapt_and_predict(self, support_x, support_y, query_x, training=False):
        support, query = self.embed(support_x, query_x, training=training)
        support = embedding_model.flatten_examples(support)                          # [T, S, D]
        query = embedding_model.flatten_examples(query)                              # [T, Q, D]
        tasks, shots, queries = embedding_model.dims(support)[0], embedding_model.dims(support)[1], embedding_model.dims(query)[1]
        labels = tf.one_hot(support_y, self.ways, dtype=support.dtype)
        support = tf.concat([support, labels], axis=-1)                     # [T, S, C]
        blank = tf.zeros(tf.concat([tf.shape(query)[:2], [self.ways]], axis=0), query.dtype)
        query = tf.concat([query, blank], axis=-1)
        sequences = tf.concat([tf.repeat(support[:, None], queries, axis=1), query[:, :, None]],
                              axis=2)                                       # [T, Q, S + 1, C]
        sequences = tf.reshape(sequences, [tasks * queries, shots + 1, support.shape[-1]])
        logits = self.sequence_logits(sequences)[:, -1]                     # [T·Q, ways]
        return tf.reshape(logits, [tasks, queries, self.ways])

    def get_config(self):
        return {**super().get_config(), "ways": self.ways, "shots": self.shots,
                "filters": self.filters, "attention": self.attention}
