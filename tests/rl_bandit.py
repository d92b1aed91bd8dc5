"""A one-step Gaussian bandit whose expected return after one exact
policy-gradient step has a closed form (shared by the meta-RL tests)."""

import keras
import numpy as np
import tensorflow as tf

from keras_meta import rl


class Bandit(rl.TaskFamily):
    """One step; the observation is 1, the reward −(a − goal)², goal = the task."""

    observation_dim, action_kind, action_dim, task_dim, horizon = 1, "continuous", 1, 1, 1

    def sample_tasks(self, count, seed):
        return tf.random.stateless_uniform([count, 1], seed)

    def reset(self, task, count, seed):
        return tf.zeros([count, 1]), tf.ones([count, 1])

    def step(self, state, actions, task):
        return state, tf.ones_like(actions), -tf.square(actions[:, 0] - task[0])


def linear_gaussian_policy(mean, log_std):
    """π(a) = N(mean, exp(log_std)²): a linear policy of the constant observation 1."""
    network = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer=keras.initializers.Constant(mean))])
    policy = rl.GaussianPolicy(network, init_log_std=log_std)
    policy.build((None, 1))
    return policy


def expected_return(mean, log_std, goal):
    """J(μ, ℓ) = E[−(a − g)²] = −(μ − g)² − e^{2ℓ}."""
    return -(mean - goal) ** 2 - np.exp(2 * log_std)


def exact_meta_gradient(mean, log_std, goal, lr):
    """∇_(μ, ℓ) J(θ + lr ∇J(θ)): the gradient of the return after one exact
    policy-gradient step (the limit of many trajectories)."""
    adapted_mean = mean - 2 * lr * (mean - goal)
    adapted_log_std = log_std - 2 * lr * np.exp(2 * log_std)
    d_mean = -2 * (adapted_mean - goal) * (1 - 2 * lr)
    d_log_std = -2 * np.exp(2 * adapted_log_std) * (1 - 4 * lr * np.exp(2 * log_std))
    return np.array([d_mean, d_log_std])


def first_order_gradient(mean, log_std, goal, lr):
    """∇J at the adapted parameters (what first-order MAML estimates)."""
    adapted_mean = mean - 2 * lr * (mean - goal)
    adapted_log_std = log_std - 2 * lr * np.exp(2 * log_std)
    return np.array([-2 * (adapted_mean - goal), -2 * np.exp(2 * adapted_log_std)])
