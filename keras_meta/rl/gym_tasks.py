"""Gymnasium environments as task families (Gymnasium is imported lazily:
`pip install "keras_meta[rl]"`)."""

import keras
import numpy as np
import tensorflow as tf

from keras_meta import arguments
from keras_meta.rl.tasks import TaskFamily

INSTALL_HINT = ('Gymnasium task families need Gymnasium (and MuJoCo for the cheetah tasks): '
                'pip install "keras_meta[rl]"')


def import_gymnasium():
    """The `gymnasium` module, or an `ImportError` saying how to install it."""
    try:
        import gymnasium
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return gymnasium


class GymTaskFamily(TaskFamily):
    """A family of tasks over one Gymnasium environment with a task parameter.

    The task reaches the environment in one of two ways: `set_task(env,
    task)` (default: the environment's own `set_task` method, if it has
    one) before each reset, and/or `reward_fn(task, reward, info, action)`,
    which recomputes each step's reward from the task (what the cheetah
    families do, reading the forward velocity Gymnasium reports). An
    environment with neither is refused (`env` has no task parameter).

    Trajectories run `horizon` steps; after an episode terminates, its
    remaining steps repeat the last observation with reward 0. Continuous
    actions are clipped to the action space's bounds. Simulation runs in
    Python through `tf.numpy_function`, one task at a time.

    Args:
      env: a Gymnasium environment id, or a function returning a new environment.
      horizon: steps per trajectory.
      task_low: the lower bounds `[task_dim]` of uniformly sampled tasks
        (override `sample_tasks` for another distribution).
      task_high: the upper bounds `[task_dim]`.
      set_task: `set_task(env, task)`, task a NumPy array `[task_dim]`.
      reward_fn: `reward_fn(task, reward, info, action)` → the step's reward.
      env_kwargs: keyword arguments of `gymnasium.make` when `env` is an id.

    Example:

    ```python
    class Pendulums(km.rl.GymTaskFamily):     # the task sets the pendulum's gravity
        def __init__(self):
            super().__init__("Pendulum-v1", horizon=50, task_low=[5.0], task_high=[15.0],
                             set_task=lambda env, task: setattr(env.unwrapped, "g", float(task[0])))
    ```
    """

    python_simulated = True

    def __init__(self, env, horizon=200, task_low=(0.0,), task_high=(1.0,), set_task=None,
                 reward_fn=None, env_kwargs=None):
        gymnasium = import_gymnasium()
        arguments.check_size("horizon", horizon)
        self.horizon = horizon
        self.env_kwargs = dict(env_kwargs or {})
        if isinstance(env, str):
            env_id = env
            self.make_env = lambda: gymnasium.make(env_id, **self.env_kwargs)
        elif callable(env):
            self.make_env = env
        else:
            raise TypeError("`env` must be a Gymnasium environment id or a function returning "
                            f"an environment; received {type(env).__name__}.")
        self.task_low = np.asarray(task_low, np.float32).reshape(-1)
        self.task_high = np.asarray(task_high, np.float32).reshape(-1)
        if self.task_low.shape != self.task_high.shape or np.any(self.task_low > self.task_high):
            raise ValueError("`task_low` and `task_high` must have the same length with "
                             f"task_low <= task_high; received {task_low!r}, {task_high!r}.")
        self.task_dim = int(self.task_low.size)
        probe = self.make_env()
        if set_task is None and hasattr(probe.unwrapped, "set_task"):
            set_task = _call_set_task
        if set_task is None and reward_fn is None:
            raise ValueError(
                f"`env` ({type(probe.unwrapped).__name__}) has no task parameter: it has no "
                "`set_task(task)` method; pass `set_task=fn(env, task)` or "
                "`reward_fn=fn(task, reward, info, action)`.")
        self.set_task, self.reward_fn = set_task, reward_fn
        self.action_space = probe.action_space
        if isinstance(probe.action_space, gymnasium.spaces.Box):
            self.action_kind, self.action_dim = "continuous", int(np.prod(probe.action_space.shape))
        elif isinstance(probe.action_space, gymnasium.spaces.Discrete):
            self.action_kind, self.action_dim = "discrete", int(probe.action_space.n)
        else:
            raise ValueError(f"`env` has a {type(probe.action_space).__name__} action space; "
                             "task families support Box (continuous) and Discrete actions.")
        if not isinstance(probe.observation_space, gymnasium.spaces.Box):
            raise ValueError("`env` must have a Box observation space; received "
                             f"{type(probe.observation_space).__name__}.")
        self.observation_dim = int(np.prod(probe.observation_space.shape))
        probe.close()
        self.envs = []
        self.done = None

    def sample_tasks(self, count, seed):
        return tf.random.stateless_uniform([count, self.task_dim], seed, 0, 1) * (
            self.task_high - self.task_low) + self.task_low

    def environments(self, count):
        """`count` environments, created once and reused."""
        while len(self.envs) < count:
            self.envs.append(self.make_env())
        return self.envs[:count]

    def _reset(self, task, count, seed):
        envs = self.environments(int(count))
        self.done = np.zeros(len(envs), bool)
        self.last = []
        for i, env in enumerate(envs):
            if self.set_task is not None:
                self.set_task(env, task)
            obs, _ = env.reset(seed=int(seed) + i)
            self.last.append(np.asarray(obs, np.float32).reshape(-1))
        return np.stack(self.last)

    def _step(self, actions, task):
        rewards = np.zeros(len(self.last), np.float32)
        for i, env in enumerate(self.envs[:len(self.last)]):
            if self.done[i]:
                continue
            if self.action_kind == "continuous":
                action = np.clip(actions[i], self.action_space.low, self.action_space.high)
                action = action.reshape(self.action_space.shape)
            else:
                action = int(round(float(actions[i][0])))
            obs, reward, terminated, _, info = env.step(action)
            if self.reward_fn is not None:
                reward = self.reward_fn(task, reward, info, action)
            rewards[i] = reward
            self.last[i] = np.asarray(obs, np.float32).reshape(-1)
            self.done[i] = terminated
        return np.stack(self.last), rewards

    def reset(self, task, count, seed):
        seed = tf.math.floormod(tf.reduce_sum(tf.cast(seed, tf.int64)), 2 ** 31 - 1)
        obs = tf.numpy_function(self._reset, [task, count, seed], tf.float32)
        obs.set_shape([count, self.observation_dim])
        return tf.zeros([count]), obs

    def step(self, state, actions, task):
        obs, rewards = tf.numpy_function(
            self._step, [tf.cast(actions, tf.float32), task], (tf.float32, tf.float32))
        count = actions.shape[0]
        obs.set_shape([count, self.observation_dim])
        rewards.set_shape([count])
        return state, obs, rewards


def _call_set_task(env, task):
    env.unwrapped.set_task(task)


CONTROL_COST = 0.05  # rllab's HalfCheetahEnvRand: 0.5 · 0.1 · ‖a‖²


@keras.saving.register_keras_serializable(package="keras_meta")
class HalfCheetahVelocity(GymTaskFamily):
    """The MAML paper's half-cheetah velocity tasks on Gymnasium's MuJoCo
    `HalfCheetah-v5`: the task is a target velocity uniform in `[0, 2]`, the
    reward `−|v − target| − 0.05 ‖a‖²`, `v` being Gymnasium's forward
    velocity (`info["x_velocity"]`). Horizon 200.

    Args:
      horizon: steps per trajectory.

    Example:

    ```python
    family = km.rl.HalfCheetahVelocity(horizon=20)
    family.observation_dim, family.action_dim   # (17, 6)
    ```
    """

    def __init__(self, horizon=200):
        super().__init__("HalfCheetah-v5", horizon=horizon, task_low=[0.0], task_high=[2.0],
                         reward_fn=_velocity_reward)

    def get_config(self):
        return {"horizon": self.horizon}


@keras.saving.register_keras_serializable(package="keras_meta")
class HalfCheetahDirection(GymTaskFamily):
    """The MAML paper's half-cheetah direction tasks: the task is +1
    (forward) or −1 (backward) with probability ½ each, the reward
    `direction · v − 0.05 ‖a‖²` on Gymnasium's `HalfCheetah-v5`. Horizon 200.

    Args:
      horizon: steps per trajectory.

    Example:

    ```python
    family = km.rl.HalfCheetahDirection(horizon=20)
    family.sample_tasks(4, tf.constant([0, 1]))   # ±1
    ```
    """

    def __init__(self, horizon=200):
        super().__init__("HalfCheetah-v5", horizon=horizon, task_low=[-1.0], task_high=[1.0],
                         reward_fn=_direction_reward)

    def sample_tasks(self, count, seed):
        coin = tf.random.stateless_uniform([count, 1], seed)
        return tf.where(coin < 0.5, -1.0, 1.0)

    def get_config(self):
        return {"horizon": self.horizon}


def _velocity_reward(task, reward, info, action):
    return -abs(info["x_velocity"] - float(task[0])) - CONTROL_COST * float(np.sum(
        np.square(action)))


def _direction_reward(task, reward, info, action):
    return float(task[0]) * info["x_velocity"] - CONTROL_COST * float(np.sum(np.square(action)))
