"""Task families: distributions over reinforcement-learning tasks.

A `TaskFamily` describes one family of tasks (navigation to a goal, running
at a target velocity, ...): it samples task parameters and simulates a
batch of trajectories of one task. `Navigation2D` is simulated in
TensorFlow (vectorized over trajectories, usable inside a compiled step);
`keras_meta.rl.GymTaskFamily` plugs in any Gymnasium environment with a
task parameter.
"""

import abc

import keras
import tensorflow as tf

from keras_meta import arguments


class TaskFamily(abc.ABC):
    """Base class of task families (the protocol `MAMLRL` and `rollout` use).

    A subclass sets the attributes below and defines `sample_tasks`, `reset`
    and `step` with TensorFlow ops (a Python simulator is wrapped with
    `tf.numpy_function`, and sets `python_simulated = True`).

    Attributes:
      observation_dim: O, the observation size.
      action_kind: "continuous" (actions `[B, A]`) or "discrete" (actions
        `[B, 1]` holding the index).
      action_dim: A continuous dimensions, or K discrete actions.
      task_dim: size of one task's parameter vector.
      horizon: steps per trajectory.
      python_simulated: True when `step` leaves TensorFlow (trajectories of
        one task are then simulated one task at a time).

    Example:

    ```python
    class Bandit(km.rl.TaskFamily):   # one step, reward −(a − task)²
        observation_dim, action_kind, action_dim, task_dim, horizon = 1, "continuous", 1, 1, 1

        def sample_tasks(self, count, seed):
            return tf.random.stateless_uniform([count, 1], seed)

        def reset(self, task, count, seed):
            return tf.zeros([count, 1]), tf.ones([count, 1])

        def step(self, state, actions, task):
            return state, tf.ones_like(actions), -tf.square(actions[:, 0] - task[0])
    ```
    """

    observation_dim = None
    action_kind = "continuous"
    action_dim = None
    task_dim = None
    horizon = None
    python_simulated = False

    @abc.abstractmethod
    def sample_tasks(self, count, seed):
        """Task parameters `[count, task_dim]` (float32) from a stateless `seed` `[2]`."""

    @abc.abstractmethod
    def reset(self, task, count, seed):
        """Starts `count` trajectories of `task` `[task_dim]`; returns
        `(state, observations [count, O])`, `state` any nest of tensors."""

    @abc.abstractmethod
    def step(self, state, actions, task):
        """One step of the `count` trajectories with `actions` `[count, A]`
        (or `[count, 1]` indices); returns `(state, observations [count, O],
        rewards [count])`."""

    def get_config(self):
        """The constructor's arguments (a family saved with a model needs
        them, and `keras.saving.register_keras_serializable`)."""
        return {}

    @classmethod
    def from_config(cls, config):
        """The family of `get_config`'s `config`."""
        return cls(**config)

    def task_stream(self, meta_batch_size, seed=0):
        """An endless `tf.data.Dataset` of task batches `[meta_batch_size,
        task_dim]`, reproducible from `seed`: what `MAMLRL.fit` and
        `MAMLRL.evaluate` read.

        Args:
          meta_batch_size: tasks per batch.
          seed: an int.

        Example:

        ```python
        tasks = km.rl.Navigation2D().task_stream(meta_batch_size=20, seed=0)
        next(iter(tasks)).shape   # (20, 2)
        ```
        """
        arguments.check_size("meta_batch_size", meta_batch_size)
        arguments.check_int("seed", seed)
        return tf.data.Dataset.counter().map(
            lambda i: self.sample_tasks(meta_batch_size, tf.stack(
                [tf.constant(seed, tf.int64), i])))


@keras.saving.register_keras_serializable(package="keras_meta")
class Navigation2D(TaskFamily):
    """The MAML paper's 2-D navigation task (Finn et al. 2017, section 5.3).

    A point robot starts at the origin; the task is a goal uniform in
    `[−goal_range, goal_range]²` (0.5 in the paper). The observation is the
    position `[2]`, the action a velocity clipped to `[−max_speed,
    max_speed]` per axis (0.1), added to the position; the reward is minus
    the distance from the new position to the goal. Horizon 100. There is no
    early termination (the rllab environment stops within 0.01 of the goal;
    the fixed horizon keeps batches rectangular).

    Args:
      horizon: steps per trajectory.
      goal_range: goals are uniform in `[−goal_range, goal_range]²`.
      max_speed: the per-axis action clip.

    Example:

    ```python
    nav = km.rl.Navigation2D()
    state, obs = nav.reset(tf.constant([0.3, -0.2]), 4, tf.constant([0, 0]))
    state, obs, reward = nav.step(state, tf.fill([4, 2], 0.5), tf.constant([0.3, -0.2]))
    ```
    """

    observation_dim = 2
    action_kind = "continuous"
    action_dim = 2
    task_dim = 2

    def __init__(self, horizon=100, goal_range=0.5, max_speed=0.1):
        arguments.check_size("horizon", horizon)
        arguments.check_finite_number("goal_range", goal_range, above=0)
        arguments.check_finite_number("max_speed", max_speed, above=0)
        self.horizon = horizon
        self.goal_range = float(goal_range)
        self.max_speed = float(max_speed)

    def sample_tasks(self, count, seed):
        return tf.random.stateless_uniform([count, 2], seed, -self.goal_range, self.goal_range)

    def reset(self, task, count, seed):
        position = tf.zeros([count, 2], tf.float32)
        return position, position

    def step(self, state, actions, task):
        velocity = tf.clip_by_value(tf.cast(actions, tf.float32), -self.max_speed, self.max_speed)
        position = state + velocity
        reward = -tf.norm(position - tf.cast(task, tf.float32)[None], axis=-1)
        return position, position, reward

    def get_config(self):
        return {"horizon": self.horizon, "goal_range": self.goal_range,
                "max_speed": self.max_speed}


@keras.saving.register_keras_serializable(package="keras_meta")
class TaskInObservation(TaskFamily):
    """`family` with each observation followed by the task's parameters: a
    policy trained on it is told the task (the MAML paper's oracle baseline,
    section 5.3), where a meta-learned policy has to infer it from rewards.

    Observations are `[count, O + task_dim]`: `family`'s `[count, O]` then
    the task `[task_dim]` repeated; everything else is `family`'s.

    Args:
      family: the `TaskFamily` to wrap.

    Example:

    ```python
    oracle = km.rl.TaskInObservation(km.rl.Navigation2D())
    oracle.observation_dim   # 4: position, then the goal
    ```
    """

    def __init__(self, family):
        if not isinstance(family, TaskFamily):
            raise TypeError(f"`family` must be a km.rl.TaskFamily, got "
                            f"{type(family).__name__}.")
        self.family = family
        self.observation_dim = family.observation_dim + family.task_dim
        self.action_kind = family.action_kind
        self.action_dim = family.action_dim
        self.task_dim = family.task_dim
        self.horizon = family.horizon
        self.python_simulated = family.python_simulated

    def observe(self, observations, task):
        """`[count, O]` observations and the task `[task_dim]` → `[count, O + task_dim]`."""
        task = tf.cast(task, observations.dtype)
        return tf.concat([observations, tf.tile(task[None], [tf.shape(observations)[0], 1])],
                         axis=-1)

    def sample_tasks(self, count, seed):
        return self.family.sample_tasks(count, seed)

    def reset(self, task, count, seed):
        state, observations = self.family.reset(task, count, seed)
        return state, self.observe(observations, task)

    def step(self, state, actions, task):
        state, observations, rewards = self.family.step(state, actions, task)
        return state, self.observe(observations, task), rewards

    def get_config(self):
        return {"family": keras.saving.serialize_keras_object(self.family)}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["family"]))
