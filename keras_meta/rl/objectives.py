"""Policy-gradient surrogates whose derivatives are the estimators MAML-RL needs.

Every surrogate takes the log-probabilities `log_probs` `[N, H]` of the
sampled actions under the policy being differentiated, the log-probabilities
`sampling_log_probs` `[N, H]` under the policy that sampled them (a
constant), and advantages `[N, H]` (constants); it returns a scalar to
*maximise*, averaged over trajectories and steps (as the MAML reference
code's inner loss). At the sampling policy all three inner surrogates have
the same value and the same gradient, `(1/NH) Σ_i Σ_t ∇log π(a_t|s_t) A_t`
(REINFORCE with a baseline);
they differ in their second derivatives, which is what MAML's meta-gradient
differentiates:

- `"dice"` (default): DiCE (Foerster et al. 2018) with the baseline of Mao
  et al. (2019): `Σ_t w_t (A_t − A_{t+1})`, `w_t = exp(Σ_{t'≤t} (log π −
  log π_sampling))` (the "magic box" of the log-probabilities up to t). Its
  Hessian is an unbiased estimate of the Hessian of the expected return, so
  the meta-gradient carries the score-function term of the pre-update
  sampling distribution.
- `"lvc"`: ProMP's low-variance curvature surrogate (Rothfuss et al. 2019),
  `Σ_t exp(log π_t − log π_sampling,t) A_t`: per-step ratios; it drops the
  cross-step terms of that Hessian (biased, lower variance).
- `"naive"`: `Σ_t log π_t A_t`, what differentiating the REINFORCE loss
  through the inner step gives: its Hessian misses the score-function term
  altogether, so its meta-gradient is biased (kept for comparison).
"""

import tensorflow as tf

ESTIMATORS = ("dice", "lvc", "naive")


def check_estimator(estimator):
    """Raises unless `estimator` is one of `ESTIMATORS`."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"`estimator` must be one of {ESTIMATORS}; received {estimator!r}.")


def inner_surrogate(log_probs, sampling_log_probs, advantages, estimator="dice"):
    """The inner-loop policy-gradient surrogate (see the module docstring).

    Args:
      log_probs: `[N, H]`, differentiable.
      sampling_log_probs: `[N, H]`, under the policy that sampled the data.
      advantages: `[N, H]`.
      estimator: "dice", "lvc" or "naive".

    Returns:
      A scalar to maximise.

    Example:

    ```python
    log_probs = tf.Variable([[-1.0, -2.0]])
    with tf.GradientTape() as tape:
        value = km.rl.inner_surrogate(log_probs, tf.constant([[-1.0, -2.0]]),
                                      tf.constant([[1.0, 2.0]]))
    tape.gradient(value, log_probs)   # [[0.5, 1]]: advantages / (N·H), as REINFORCE's
    ```
    """
    check_estimator(estimator)
    sampling_log_probs = tf.stop_gradient(sampling_log_probs)
    advantages = tf.stop_gradient(advantages)
    if estimator == "naive":
        step_values = log_probs * advantages
    elif estimator == "lvc":
        step_values = tf.exp(log_probs - sampling_log_probs) * advantages
    else:
        weights = tf.exp(tf.cumsum(log_probs - sampling_log_probs, axis=1))
        following = tf.concat([advantages[:, 1:], tf.zeros_like(advantages[:, :1])], axis=1)
        step_values = weights * (advantages - following)
    return tf.reduce_mean(step_values)


def importance_surrogate(log_probs, sampling_log_probs, advantages):
    """TRPO's surrogate: `mean_i Σ_t exp(log π − log π_sampling) A_t / H`
    (the mean over steps of ratio × advantage).

    Args:
      log_probs: `[..., H]`, differentiable.
      sampling_log_probs: `[..., H]`.
      advantages: `[..., H]`.

    Returns:
      A scalar to maximise.

    Example:

    ```python
    km.rl.importance_surrogate(tf.zeros([2, 3]), tf.zeros([2, 3]), tf.ones([2, 3]))  # 1.0
    ```
    """
    ratio = tf.exp(log_probs - tf.stop_gradient(sampling_log_probs))
    return tf.reduce_mean(ratio * tf.stop_gradient(advantages))


def clipped_surrogate(log_probs, sampling_log_probs, advantages, clip=0.2):
    """PPO's clipped surrogate: the mean of `min(r A, clip(r, 1 ± clip) A)`,
    `r = exp(log π − log π_sampling)`.

    Args:
      log_probs: `[..., H]`, differentiable.
      sampling_log_probs: `[..., H]`.
      advantages: `[..., H]`.
      clip: ε.

    Returns:
      A scalar to maximise.

    Example:

    ```python
    km.rl.clipped_surrogate(tf.fill([1, 1], 1.0), tf.zeros([1, 1]), tf.ones([1, 1]))  # 1.2
    ```
    """
    ratio = tf.exp(log_probs - tf.stop_gradient(sampling_log_probs))
    advantages = tf.stop_gradient(advantages)
    clipped = tf.clip_by_value(ratio, 1.0 - clip, 1.0 + clip)
    return tf.reduce_mean(tf.minimum(ratio * advantages, clipped * advantages))
