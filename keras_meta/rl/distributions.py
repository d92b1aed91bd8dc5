"""Action distributions of policies, as pure functions of the policy's outputs.

A policy (`keras_meta.rl.GaussianPolicy`, `keras_meta.rl.CategoricalPolicy`)
is an ordinary Keras model whose output, `params` `[N, P]`, parameterises
one distribution per observation. The distribution objects here read those
outputs: log-probabilities, KL divergences, entropies, and sampling from
noise drawn beforehand (so that a rollout is a pure function of a seed).
"""

import math

import tensorflow as tf


class Gaussian:
    """Diagonal Gaussian over `A`-dimensional continuous actions.

    `params` `[..., 2A]` holds the mean then the log standard deviation.

    Args:
      action_dim: A, the number of action dimensions.

    Example:

    ```python
    dist = km.rl.distributions.Gaussian(1)
    params = tf.constant([[0.0, 0.0]])              # mean 0, log-std 0
    dist.log_prob(params, tf.constant([[0.0]]))      # −½ log 2π
    ```
    """

    kind = "continuous"

    def __init__(self, action_dim):
        self.action_dim = int(action_dim)
        self.params_dim = 2 * self.action_dim

    def split(self, params):
        """`(mean, log_std)`, each `[..., A]`, of `params` `[..., 2A]`."""
        return params[..., :self.action_dim], params[..., self.action_dim:]

    def log_prob(self, params, actions):
        """Log-density `[...]` of `actions` `[..., A]` under `params` `[..., 2A]`."""
        mean, log_std = self.split(params)
        z = (actions - mean) * tf.exp(-log_std)
        return tf.reduce_sum(-0.5 * tf.square(z) - log_std - 0.5 * math.log(2 * math.pi), -1)

    def kl(self, params, other):
        """KL(params ‖ other) `[...]`, both `[..., 2A]`."""
        mean, log_std = self.split(params)
        other_mean, other_log_std = self.split(other)
        variance, other_variance = tf.exp(2 * log_std), tf.exp(2 * other_log_std)
        return tf.reduce_sum(other_log_std - log_std + (variance + tf.square(mean - other_mean))
                             / (2 * other_variance) - 0.5, -1)

    def entropy(self, params):
        """Entropy `[...]` of `params` `[..., 2A]`."""
        _, log_std = self.split(params)
        return tf.reduce_sum(log_std + 0.5 * math.log(2 * math.pi * math.e), -1)

    def noise_shape(self):
        """Shape of the noise one action is sampled from: `[A]` standard normals."""
        return [self.action_dim]

    def draw_noise(self, shape, seed):
        """Standard normal noise `[*shape, A]` from a stateless `seed` `[2]`."""
        return tf.random.stateless_normal(list(shape) + self.noise_shape(), seed)

    def sample(self, params, noise):
        """Actions `[..., A]`: `mean + std · noise`, noise `[..., A]` standard normal."""
        mean, log_std = self.split(params)
        return mean + tf.exp(log_std) * noise

    def mode(self, params):
        """The most likely action `[..., A]`: the mean."""
        return self.split(params)[0]


class Categorical:
    """Categorical distribution over `K` discrete actions; `params` `[..., K]`
    are logits, actions `[..., 1]` hold the action index (as a float, so that
    trajectories of every policy share one dtype).

    Args:
      num_actions: K.

    Example:

    ```python
    dist = km.rl.distributions.Categorical(3)
    dist.log_prob(tf.zeros([1, 3]), tf.constant([[2.0]]))  # log 1/3
    ```
    """

    kind = "discrete"

    def __init__(self, num_actions):
        self.num_actions = int(num_actions)
        self.params_dim = self.num_actions
        self.action_dim = 1

    def log_prob(self, params, actions):
        """Log-probability `[...]` of `actions` `[..., 1]` under logits `[..., K]`."""
        index = tf.cast(tf.round(actions[..., 0]), tf.int32)
        log_p = tf.nn.log_softmax(params, axis=-1)
        return tf.reduce_sum(log_p * tf.one_hot(index, self.num_actions, dtype=log_p.dtype), -1)

    def kl(self, params, other):
        """KL(params ‖ other) `[...]`, both logits `[..., K]`."""
        log_p, log_q = tf.nn.log_softmax(params, -1), tf.nn.log_softmax(other, -1)
        return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), -1)

    def entropy(self, params):
        """Entropy `[...]` of logits `[..., K]`."""
        log_p = tf.nn.log_softmax(params, -1)
        return -tf.reduce_sum(tf.exp(log_p) * log_p, -1)

    def noise_shape(self):
        """Shape of the noise one action is sampled from: `[K]` Gumbels."""
        return [self.num_actions]

    def draw_noise(self, shape, seed):
        """Gumbel noise `[*shape, K]` from a stateless `seed` `[2]`."""
        uniform = tf.random.stateless_uniform(list(shape) + self.noise_shape(), seed,
                                              minval=1e-7, maxval=1.0)
        return -tf.math.log(-tf.math.log(uniform))

    def sample(self, params, noise):
        """Actions `[..., 1]` by the Gumbel-max trick, noise `[..., K]`."""
        index = tf.argmax(params + tf.cast(noise, params.dtype), axis=-1)
        return tf.cast(index, params.dtype)[..., None]

    def mode(self, params):
        """The most likely action `[..., 1]`."""
        return tf.cast(tf.argmax(params, axis=-1), params.dtype)[..., None]
