"""Sampling trajectories of one task with a policy, inside TensorFlow."""

import tensorflow as tf

from keras_meta import episode

NON_FINITE_REWARDS = (
    "the task family (`family`) returned rewards or observations that are not finite; "
    "check its `step` (and the actions it received).")

# Keys of a batch of trajectories: observations [N, H, O], actions [N, H, A], rewards [N, H],
# the policy's distribution parameters [N, H, P] and log-probabilities [N, H] when sampling.
OBSERVATIONS, ACTIONS, REWARDS, PARAMS, LOG_PROBS = (
    "observations", "actions", "rewards", "params", "log_probs")


def rollout(family, policy_fn, distribution, task, num_trajectories, seed, deterministic=False):
    """Samples `num_trajectories` trajectories of one task.

    Every trajectory runs `family.horizon` steps (no early termination).
    The action noise is drawn up front from `seed`, so the result is a pure
    function of the policy and the seed; nothing is differentiated through
    the sampling (the losses recompute log-probabilities from the data).

    Args:
      family: a `keras_meta.rl.TaskFamily`.
      policy_fn: observations `[N, O]` → distribution parameters `[N, P]`.
      distribution: the policy's distribution (`distributions.Gaussian`, ...).
      task: the task's parameters `[task_dim]`.
      num_trajectories: N, an int.
      seed: a stateless seed `[2]` (int32 or int64).
      deterministic: act with the distribution's mode instead of sampling.

    Returns:
      A dict of tensors: `observations` `[N, H, O]`, `actions` `[N, H, A]`,
      `rewards` `[N, H]`, `params` `[N, H, P]`, `log_probs` `[N, H]`.

    Example:

    ```python
    nav = km.rl.Navigation2D(horizon=5)
    policy = km.rl.mlp_policy(2, 2, hidden=(8,))
    data = km.rl.rollout(nav, policy, policy.distribution, tf.constant([0.2, 0.1]),
                         3, tf.constant([1, 2]))
    data["rewards"].shape   # (3, 5)
    ```
    """
    horizon = family.horizon
    seed = tf.cast(seed, tf.int64)
    noise_seed, reset_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    noise = distribution.draw_noise([horizon, num_trajectories], noise_seed)
    task = tf.convert_to_tensor(task, tf.float32)
    state, obs = family.reset(task, num_trajectories, reset_seed)
    arrays = {key: tf.TensorArray(tf.float32, size=horizon)
              for key in (OBSERVATIONS, ACTIONS, REWARDS, PARAMS)}

    def body(t, state, obs, arrays):
        obs = tf.cast(obs, tf.float32)
        params = tf.cast(policy_fn(obs), tf.float32)
        actions = distribution.mode(params) if deterministic else distribution.sample(
            params, noise[t])
        state, next_obs, rewards = family.step(state, actions, task)
        rewards, next_obs = episode.checked_finite(
            [tf.cast(rewards, tf.float32), tf.cast(next_obs, tf.float32)], NON_FINITE_REWARDS)
        arrays = {OBSERVATIONS: arrays[OBSERVATIONS].write(t, obs),
                  ACTIONS: arrays[ACTIONS].write(t, actions),
                  REWARDS: arrays[REWARDS].write(t, rewards),
                  PARAMS: arrays[PARAMS].write(t, params)}
        return t + 1, state, tf.ensure_shape(next_obs, obs.shape), arrays

    _, _, _, arrays = tf.while_loop(
        lambda t, *_: t < horizon, body, (tf.constant(0), state, tf.cast(obs, tf.float32), arrays))
    # [H, N, ...] → [N, H, ...]
    data = {key: tf.einsum("tn...->nt...", array.stack()) for key, array in arrays.items()}
    data[LOG_PROBS] = distribution.log_prob(data[PARAMS], data[ACTIONS])
    return data
