"""Latent Embedding Optimization (Rusu et al., "Meta-learning with latent
embedding optimization", 2019)."""

import math

import keras
import tensorflow as tf

from keras_meta import adaptation, arguments, keras_internals, update_rules
from keras_meta.algorithms import embedding_model, metric

# Floors that keep log σ, and the norms of the orthogonality penalty, finite.
MIN_STDDEV = 1e-5
MIN_SQUARED_NORM = 1e-12


def kl_divergence(mean, stddev):
    """Mean over elements of `KL(N(mean, stddev²) ‖ N(0, 1))`, in closed form:
    `½(μ² + σ² − 1) − log σ` per element."""
    return tf.reduce_mean(0.5 * (mean**2 + stddev**2 - 1.0) - tf.math.log(stddev))


def orthogonality(kernel):
    """LEO's decoder penalty: the mean squared difference between the
    correlation matrix of the rows of `kernel` `[R, C]` and the identity `[R, R]`."""
    norms = tf.sqrt(tf.reduce_sum(tf.square(kernel), axis=1, keepdims=True) + MIN_SQUARED_NORM)
    correlation = tf.matmul(kernel, kernel, transpose_b=True) / tf.matmul(norms, norms,
                                                                        transpose_b=True)
    return tf.reduce_mean(tf.square(correlation - tf.eye(tf.shape(kernel)[0], dtype=kernel.dtype)))


def gaussian_parameters(outputs, scale):
    """Splits `outputs` `[..., 2K]` into a mean `[..., K]` and a standard
    deviation `scale · softplus(u) / ln 2` (equal to `scale` where `u = 0`),
    at least `MIN_STDDEV`."""
    mean, raw = tf.split(outputs, 2, axis=-1)
    return mean, tf.maximum(scale * tf.math.softplus(raw) / math.log(2.0), MIN_STDDEV)


def classify(features, weights):
    """Linear classifier without bias: `[T, N, D]` features and `[T, W, D]`
    class weights → `[T, N, W]` logits."""
    return tf.einsum("tnd,twd->tnw", features, weights)


def support_loss(labels, logits):
    """Sum over tasks of each task's mean softmax cross-entropy, so that the
    gradient with respect to one task's parameters is that of its own loss.
    `labels` `[T, S]` int, `logits` `[T, S, W]`."""
    one_hot = tf.one_hot(labels, tf.shape(logits)[-1], dtype=logits.dtype)
    per_example = -tf.reduce_sum(one_hot * tf.nn.log_softmax(logits), axis=-1)
    return tf.reduce_sum(tf.reduce_mean(per_example, axis=1))




@keras.saving.register_keras_serializable(package="keras_meta")
class LEO(embedding_model.EmbeddingModel):
    """LEO: adapts a low-dimensional latent code per class, from which a
    decoder generates the classifier's weights.

    For each task, with support features `x` `[S, D]` from `embedding`:

    1. An encoder (linear, `D → L`) codes each support example; a relation
       network (3 layers of `2L`) reads every pair of codes of the task;
       averaged over the pairs of each class's examples it gives the mean and
       standard deviation of a Gaussian over the class's latent code
       `z_n` `[L]`, sampled in training (its mean otherwise).
    2. A decoder (linear, `L → 2D`) maps `z_n` to a Gaussian over the class's
       classifier weights `w_n` `[D]` (sampled in training); logits are
       `x · w_n`.
    3. `inner_steps` gradient steps on the support cross-entropy adapt the
       latent codes, `z ← z − α ⊙ ∇_z`; then `finetune_steps` steps adapt the
       generated weights, `w ← w − η ⊙ ∇_w`. Both run through
       the inner loop of `MAML`, on all tasks at once (tasks are
       independent); `α` `[L]` and `η` `[D]` are meta-learned.
    4. The meta-loss is the compiled loss on the query logits plus
       `kl_weight · KL(q(z) ‖ N(0, I))` (closed form),
       `encoder_penalty_weight · mean(stop_gradient(z') − z)²`,
       `l2_penalty_weight · Σ‖kernel‖²` over the encoder, relation network and
       decoder, and `orthogonality_penalty_weight · orthogonality(decoder)`.

    The number of ways is read from the support labels, so one model serves
    any number of classes. `embedding` trains with LEO, or stays fixed with
    `embedding.trainable = False` (e.g. a pre-trained feature extractor);
    its batch norm behaves as in `EmbeddingModel`. In training, the noise ε of
    the latent and weight samples is drawn once per meta-iteration, keyed by
    `(seed, optimizer.iterations)` (so a run resumed from a backup draws the
    same noise) and shared by the inner steps; outside training LEO uses the
    means and is deterministic.

    Args:
      embedding: a Keras model `[N, *features]` → `[N, ...]` (flattened to `D`).
      latent_size: `L`.
      inner_steps: latent adaptation steps.
      finetune_steps: steps fine-tuning the generated weights.
      inner_lr_init: initial value of the learned latent rates `α`.
      finetune_lr_init: initial value of the learned weight rates `η`.
      kl_weight, encoder_penalty_weight: weights of the regularisers (the
        reference implementation's defaults).
      l2_penalty_weight, orthogonality_penalty_weight: likewise.
      seed: seed of the sampling.

    Inputs are episode dicts; outputs are logits `[T, Q, ways]`. Train with
    `SparseCategoricalCrossentropy(from_logits=True)`, and clip the
    meta-gradient as the reference implementation does, e.g.
    `Adam(3e-3, global_clipnorm=1.0)`: unclipped, a 1,000-iteration Omniglot
    run (conv4, Adam 3e-3) diverged after reaching 76% training accuracy.

    Example:

    ```python
    model = km.LEO(km.learners.conv4_embedding(), latent_size=16, inner_steps=5)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    ```
    """

    def __init__(self, embedding, latent_size=64, inner_steps=5, finetune_steps=5,
                 inner_lr_init=1.0, finetune_lr_init=0.001, kl_weight=0.001,
                 encoder_penalty_weight=1e-9, l2_penalty_weight=1e-8,
                 orthogonality_penalty_weight=1e-3, seed=0, **kwargs):
        for name, value in (("latent_size", latent_size), ("inner_steps", inner_steps),
                            ("finetune_steps", finetune_steps)):
            arguments.check_int(name, value, minimum=1 if name == "latent_size" else 0)
        for name, value in (("inner_lr_init", inner_lr_init), ("finetune_lr_init", finetune_lr_init),
                            ("kl_weight", kl_weight), ("encoder_penalty_weight", encoder_penalty_weight),
                            ("l2_penalty_weight", l2_penalty_weight),
                            ("orthogonality_penalty_weight", orthogonality_penalty_weight)):
            arguments.check_finite_number(name, value, minimum=0)
        arguments.check_int("seed", seed)
        super().__init__(embedding, **kwargs)
        self.latent_size = latent_size
        self.inner_steps = inner_steps
        self.finetune_steps = finetune_steps
        self.inner_lr_init = float(inner_lr_init)
        self.finetune_lr_init = float(finetune_lr_init)
        self.kl_weight = float(kl_weight)
        self.encoder_penalty_weight = float(encoder_penalty_weight)
        self.l2_penalty_weight = float(l2_penalty_weight)
        self.orthogonality_penalty_weight = float(orthogonality_penalty_weight)
        self.seed = seed
        # The latent networks and both inner loops run in the variable dtype
        # (float32 under a mixed policy); only the embedding computes in float16.
        dtype = self.variable_dtype
        self.encoder = keras.layers.Dense(latent_size, use_bias=False, name="encoder",
                                          dtype=dtype)
        self.relation_network = keras.Sequential([
            keras.layers.Dense(2 * latent_size, activation="relu", use_bias=False, dtype=dtype),
            keras.layers.Dense(2 * latent_size, activation="relu", use_bias=False, dtype=dtype),
            keras.layers.Dense(2 * latent_size, use_bias=False, dtype=dtype),
        ], name="relation_network")

    def build(self, input_shape):
        super().build(input_shape)
        self.feature_size = math.prod(self.learner_output_shape[1:])
        self.encoder.build((None, self.feature_size))
        self.relation_network.build((None, None, None, 2 * self.latent_size))  # [T, S, S, 2L]
        self.decoder = keras.layers.Dense(2 * self.feature_size, use_bias=False, name="decoder",
                                          dtype=self.variable_dtype)
        self.decoder.build((None, self.latent_size))
        self.inner_rates = self.add_weight(
            shape=(self.latent_size,), name="inner_rates",
            initializer=keras.initializers.Constant(self.inner_lr_init))
        self.finetune_rates = self.add_weight(
            shape=(self.feature_size,), name="finetune_rates",
            initializer=keras.initializers.Constant(self.finetune_lr_init))

    # The pieces --------------------------------------------------------------

    def sampling_noise(self, latent_shape, dtype):
        """This meta-iteration's standard normal noise: `(ε_z, ε_w)` for
        latents `latent_shape` = `[T, W, L]` and weights `[T, W, D]`. Under
        `tf.distribute` the noise is drawn for the global meta-batch and each
        replica takes its own tasks' share, as one device would draw it."""
        iteration = 0 if self.optimizer is None else self.optimizer.iterations
        key = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(iteration, tf.int64)])
        weight_shape = tf.concat([latent_shape[:2], [self.feature_size]], axis=0)
        tasks, replicas, replica = latent_shape[0], 1, 0
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            replicas = context.num_replicas_in_sync
            replica = tf.cast(context.replica_id_in_sync_group, latent_shape.dtype)
        return tuple(
            tf.random.stateless_normal(
                tf.concat([[tasks * replicas], shape[1:]], axis=0),
                tf.random.experimental.stateless_fold_in(key, i), dtype=dtype,
            )[replica * tasks:(replica + 1) * tasks]
            for i, shape in enumerate((latent_shape, weight_shape)))

    def encode(self, support, support_y):
        """Support features `[T, S, D]` → mean and standard deviation of each
        class's latent code, `[T, ways, L]` each."""
        codes = self.encoder(support)                                   # [T, S, L]
        size = tf.shape(codes)[1]
        pairs = tf.concat([tf.repeat(codes[:, :, None], size, axis=2),
                           tf.repeat(codes[:, None], size, axis=1)], axis=-1)  # [T, S, S, 2L]
        relations = tf.reduce_mean(self.relation_network(pairs), axis=2)   # [T, S, 2L]
        per_class = metric.class_means(relations, support_y, embedding_model.num_ways(support_y))
        return gaussian_parameters(per_class, 1.0)

    def decode(self, latents, noise=None):
        """Latent codes `[T, W, L]` → classifier weights `[T, W, D]`: the mean,
        or `mean + stddev · noise` given `noise` `[T, W, D]`."""
        mean, stddev = gaussian_parameters(self.decoder(latents), 1.0 / math.sqrt(self.feature_size))
        return mean if noise is None else mean + stddev * noise

    def adapt_latents(self, latents, support, support_y, weight_noise=None):
        """The latent inner loop: the trajectory of `inner_steps + 1` latent
        codes `[T, W, L]`."""
        trajectory = adaptation.adapt(
            lambda w, x: classify(x, self.decode(w[0], weight_noise)), support_loss, [latents],
            support, support_y, steps=self.inner_steps, rule=update_rules.SGD(self.inner_rates.value),
            trajectory=True)
        return [weights[0] for weights in trajectory]

    def finetune(self, weights, support, support_y):
        """Fine-tunes generated weights `[T, W, D]` on the support set."""
        return adaptation.adapt(
            lambda w, x: classify(x, w[0]), support_loss, [weights], support, support_y,
            steps=self.finetune_steps, rule=update_rules.SGD(self.finetune_rates.value))[0]

    def forward(self, support_x, support_y, query_x, training=False):
        """Query logits `[T, Q, W]`, the KL term and the encoder penalty."""
        support, query = self.embed(support_x, query_x, training=training)
        support = embedding_model.flatten_examples(support)
        query = embedding_model.flatten_examples(query)
        mean, stddev = self.encode(support, support_y)
        latents, weight_noise = mean, None
        if training:
            latent_noise, weight_noise = self.sampling_noise(tf.shape(mean), mean.dtype)
            latents = mean + stddev * latent_noise
        adapted = self.adapt_latents(latents, support, support_y, weight_noise)[-1]
        weights = self.finetune(self.decode(adapted, weight_noise), support, support_y)
        encoder_penalty = tf.reduce_mean(tf.square(tf.stop_gradient(adapted) - latents))
        return classify(query, weights), kl_divergence(mean, stddev), encoder_penalty

    def regularisation(self):
        """`l2_penalty_weight · Σ‖kernel‖² + orthogonality_penalty_weight · orthogonality(decoder)`."""
        kernels = [self.encoder.kernel, *(layer.kernel for layer in self.relation_network.layers),
                   self.decoder.kernel]
        l2 = tf.add_n([tf.reduce_sum(tf.square(k.value)) for k in kernels])
        return (self.l2_penalty_weight * l2
                + self.orthogonality_penalty_weight * orthogonality(self.decoder.kernel.value))

    # MetaModel ---------------------------------------------------------------

    def adapt_and_predict(self, support_x, support_y, query_x, training=False,
                          with_penalties=False):
        """Query logits `[T, Q, W]`; with `with_penalties`, also the KL term
        and the encoder penalty (for `meta_loss`)."""
        logits, kl, encoder_penalty = self.forward(support_x, support_y, query_x,
                                                   training=training)
        return (logits, kl, encoder_penalty) if with_penalties else logits

    def meta_loss(self, x, y, sample_weight=None):
        """Query predictions and the meta-loss: the compiled loss plus LEO's
        regularisers, from the same forward pass as `call`."""
        y_pred, kl, encoder_penalty = self(x, training=True, with_penalties=True)
        loss = keras_internals.compute_compiled_loss(self, x, y, y_pred, sample_weight,
                                                     training=True)
        penalties = (self.kl_weight * kl + self.encoder_penalty_weight * encoder_penalty
                     + self.regularisation())
        # Scaled as the compiled loss is (1 / replicas): the replicas' gradients are summed.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return y_pred, loss + tf.cast(penalties, loss.dtype) / replicas

    def get_config(self):
        return {
            **super().get_config(),
            "latent_size": self.latent_size,
            "inner_steps": self.inner_steps,
            "finetune_steps": self.finetune_steps,
            "inner_lr_init": self.inner_lr_init,
            "finetune_lr_init": self.finetune_lr_init,
            "kl_weight": self.kl_weight,
            "encoder_penalty_weight": self.encoder_penalty_weight,
            "l2_penalty_weight": self.l2_penalty_weight,
            "orthogonality_penalty_weight": self.orthogonality_penalty_weight,
            "seed": self.seed,
        }
