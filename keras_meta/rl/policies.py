"""Policies as ordinary Keras models.

A policy maps observations `[N, O]` to the parameters `[N, P]` of one
action distribution per observation (`policy.distribution` reads them).
`GaussianPolicy` wraps any Keras network that outputs the mean of a
continuous action and learns a state-independent log standard deviation;
`CategoricalPolicy` wraps a network that outputs logits. Both are plain
`keras.Model`s: they save, reload, fine-tune and export like any other.
"""

import keras
import tensorflow as tf

from keras_meta import arguments
from keras_meta.rl import distributions


def _check_network(network):
    if not isinstance(network, keras.Layer):
        raise TypeError("`network` must be a Keras model or layer mapping observations [N, O] "
                        f"to [N, outputs]; received {type(network).__name__}.")


def _output_size(policy, input_shape, outputs_named):
    """The size of `policy.network`'s outputs `[N, size]` on observations
    `input_shape` `(N, O)`, building the network if needed."""
    network = policy.network
    if network.built:
        outputs = network.compute_output_shape(tuple(input_shape))
    else:
        outputs = network(keras.KerasTensor(tuple(input_shape), dtype=policy.compute_dtype)).shape
    if len(outputs) != 2 or outputs[-1] is None:
        raise ValueError(f"`network` must map observations [N, O] to {outputs_named}; its "
                         f"output shape is {tuple(outputs)}.")
    return int(outputs[-1])


@keras.saving.register_keras_serializable(package="keras_meta")
class GaussianPolicy(keras.Model):
    """Diagonal Gaussian policy: `network(obs)` is the mean, `[N, A]`; the
    log standard deviation `[A]` is a learned weight (`log_std`), as in the
    MAML paper's policies.

    `call(observations [N, O])` returns `[N, 2A]`: the mean then the
    log-std (broadcast), which `distribution` (`distributions.Gaussian`) reads.

    Args:
      network: a Keras model mapping `[N, O]` observations to `[N, A]` means.
      init_log_std: the initial log standard deviation (0: std 1).
      **kwargs: `keras.Model` arguments (`name`, ...).

    Example:

    ```python
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    policy = km.rl.GaussianPolicy(net)
    params = policy(np.zeros((5, 2), "float32"))          # [5, 4]
    policy.distribution.log_prob(params, tf.zeros([5, 2]))  # [5]
    ```
    """

    def __init__(self, network, init_log_std=0.0, **kwargs):
        _check_network(network)
        arguments.check_finite_number("init_log_std", init_log_std)
        super().__init__(**kwargs)
        self.network = network
        self.init_log_std = float(init_log_std)
        self.log_std = None
        self.distribution = None

    def build(self, input_shape):
        """Builds the network on observations `[N, O]` and creates `log_std` `[A]`.

        Args:
          input_shape: `(N, O)`.
        """
        action_dim = _output_size(self, input_shape, "means [N, A]")
        self.log_std = self.add_weight(
            shape=(action_dim,), name="log_std",
            initializer=keras.initializers.Constant(self.init_log_std))
        self.distribution = distributions.Gaussian(action_dim)
        self.built = True

    def call(self, observations, training=False):
        mean = tf.cast(self.network(observations, training=training), self.compute_dtype)
        log_std = tf.broadcast_to(tf.cast(self.log_std, mean.dtype), tf.shape(mean))
        return tf.concat([mean, log_std], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * self.distribution.action_dim)

    def get_config(self):
        return {**super().get_config(), "network": keras.saving.serialize_keras_object(
            self.network), "init_log_std": self.init_log_std}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_meta")
class CategoricalPolicy(keras.Model):
    """Categorical policy over `K` discrete actions: `call(observations [N,
    O])` returns the network's logits `[N, K]`, read by `distribution`
    (`distributions.Categorical`).

    Args:
      network: a Keras model mapping `[N, O]` observations to `[N, K]` logits.
      **kwargs: `keras.Model` arguments.

    Example:

    ```python
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    policy = km.rl.CategoricalPolicy(net)
    logits = policy(np.zeros((5, 4), "float32"))         # [5, 3]
    ```
    """

    def __init__(self, network, **kwargs):
        _check_network(network)
        super().__init__(**kwargs)
        self.network = network
        self.distribution = None

    def build(self, input_shape):
        """Builds the network on observations `[N, O]`.

        Args:
          input_shape: `(N, O)`.
        """
        self.distribution = distributions.Categorical(
            _output_size(self, input_shape, "logits [N, K]"))
        self.built = True

    def call(self, observations, training=False):
        return tf.cast(self.network(observations, training=training), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.distribution.num_actions)

    def get_config(self):
        return {**super().get_config(),
                "network": keras.saving.serialize_keras_object(self.network)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


def mlp_policy(observation_dim, action_dim, hidden=(100, 100), discrete=False, init_log_std=0.0,
               seed=None):
    """The MAML paper's policy: an MLP with ReLU hidden layers (two of 100
    units by default) under a Gaussian head, or a categorical one.

    Args:
      observation_dim: O, the observation size.
      action_dim: A continuous action dimensions, or K discrete actions.
      hidden: hidden layer widths.
      discrete: a categorical policy over `action_dim` actions.
      init_log_std: initial log-std of the Gaussian head.
      seed: seed of the weight initialisers (None: Keras's global seed).

    Returns:
      A built `GaussianPolicy` or `CategoricalPolicy`.

    Example:

    ```python
    policy = km.rl.mlp_policy(2, 2)
    policy(np.zeros((3, 2), "float32")).shape   # (3, 4)
    ```
    """
    arguments.check_size("observation_dim", observation_dim)
    arguments.check_size("action_dim", action_dim)
    seeds = iter(range(0 if seed is None else seed, 10 ** 6))

    def init():
        return keras.initializers.GlorotUniform(None if seed is None else next(seeds))

    layers = [keras.Input((observation_dim,))]
    for units in hidden:
        arguments.check_size("hidden", units)
        layers.append(keras.layers.Dense(units, activation="relu", kernel_initializer=init()))
    layers.append(keras.layers.Dense(action_dim, kernel_initializer=init()))
    network = keras.Sequential(layers)
    policy = CategoricalPolicy(network) if discrete else GaussianPolicy(network, init_log_std)
    policy.build((None, observation_dim))
    return policy
