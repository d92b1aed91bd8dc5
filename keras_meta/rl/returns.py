"""Returns-to-go, the linear feature baseline and advantages (per task)."""

import tensorflow as tf

from keras_meta import arguments


def returns_to_go(rewards, discount):
    """Discounted returns-to-go `R_t = Σ_{t' ≥ t} discount^(t'−t) r_t'`.

    Args:
      rewards: `[N, H]`.
      discount: γ in `[0, 1]`.

    Returns:
      `[N, H]`.

    Example:

    ```python
    km.rl.returns_to_go(tf.constant([[1.0, 1.0, 1.0]]), 0.5)   # [[1.75, 1.5, 1.0]]
    ```
    """
    rewards = tf.convert_to_tensor(rewards, tf.float32)
    reversed_rewards = tf.reverse(tf.transpose(rewards), [0])          # [H, N], last step first
    returns = tf.scan(lambda carry, r: r + discount * carry, reversed_rewards,
                      initializer=tf.zeros_like(reversed_rewards[0]))
    return tf.transpose(tf.reverse(returns, [0]))


def baseline_features(observations, horizon_scale=100.0):
    """Duan et al. (2016)'s linear-baseline features of each step: the
    observation clipped to ±10, its square, the time `t/100`, its square and
    cube, and 1.

    Args:
      observations: `[N, H, O]`.
      horizon_scale: the time feature is `t / horizon_scale`.

    Returns:
      `[N, H, 2O + 4]`.

    Example:

    ```python
    km.rl.baseline_features(tf.zeros([3, 100, 2])).shape   # (3, 100, 8)
    ```
    """
    obs = tf.clip_by_value(tf.convert_to_tensor(observations, tf.float32), -10.0, 10.0)
    shape = tf.shape(obs)
    time = tf.cast(tf.range(shape[1]), tf.float32) / horizon_scale
    time = tf.broadcast_to(time[None, :, None], [shape[0], shape[1], 1])
    return tf.concat([obs, tf.square(obs), time, time ** 2, time ** 3, tf.ones_like(time)], -1)


def linear_baseline(observations, returns, l2=1e-5):
    """Fits the linear feature baseline to one task's returns and returns
    its values: ridge least squares `(FᵀF + l2·I) w = Fᵀ R` on
    `baseline_features`, evaluated on the same steps (as rllab's
    `LinearFeatureBaseline`, refitted per task at each adaptation step).

    Args:
      observations: `[N, H, O]`.
      returns: the returns-to-go `[N, H]` to regress.
      l2: the ridge coefficient.

    Returns:
      Baseline values `[N, H]`.

    Example:

    ```python
    obs = tf.random.normal([4, 10, 2])
    values = km.rl.linear_baseline(obs, tf.ones([4, 10]))   # ≈ 1 everywhere
    ```
    """
    arguments.check_finite_number("l2", l2, minimum=0)
    features = baseline_features(observations)
    size = features.shape[-1]
    flat = tf.cast(tf.reshape(features, [-1, size]), tf.float64)
    targets = tf.cast(tf.reshape(returns, [-1, 1]), tf.float64)
    gram = tf.matmul(flat, flat, transpose_a=True) + l2 * tf.eye(size, dtype=tf.float64)
    weights = tf.linalg.solve(gram, tf.matmul(flat, targets, transpose_a=True))
    return tf.cast(tf.reshape(tf.matmul(flat, weights), tf.shape(returns)), tf.float32)


def advantages(observations, rewards, discount=0.99, baseline=True, normalize=True):
    """One task's advantages: returns-to-go minus the fitted linear baseline
    (`baseline=True`), optionally normalised to mean 0 and standard
    deviation 1 over the task's steps.

    Args:
      observations: `[N, H, O]`.
      rewards: `[N, H]`.
      discount: γ.
      baseline: subtract `linear_baseline`.
      normalize: standardise the advantages.

    Returns:
      `[N, H]`.

    Example:

    ```python
    adv = km.rl.advantages(tf.zeros([2, 3, 1]), tf.ones([2, 3]), discount=1.0,
                           baseline=False, normalize=False)   # [[3, 2, 1], [3, 2, 1]]
    ```
    """
    returns = returns_to_go(rewards, discount)
    values = returns - linear_baseline(observations, returns) if baseline else returns
    if normalize:
        mean, variance = tf.nn.moments(values, axes=[0, 1])
        values = (values - mean) / (tf.sqrt(variance) + 1e-8)
    return values
