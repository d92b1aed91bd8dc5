"""MAML-RL's meta-gradient against the closed form of a one-step Gaussian bandit.

π_θ(a) = N(μ, e^{2ℓ}), reward −(a − g)²: J(θ) = −(μ − g)² − e^{2ℓ}. One
policy-gradient step θ' = θ + α∇J(θ) has a closed form, hence so does the
meta-gradient ∇_θ J(θ'). Each of T identical tasks gives one independent
estimate (N trajectories before and after the step), so the mean over
tasks has a standard error from their spread."""

import numpy as np
import pytest
import tensorflow as tf

from keras_meta import rl
from tests import rl_bandit

MEAN, LOG_STD, GOAL, LR = 0.0, 0.0, 1.0, 0.1


def estimates(estimator, trajectories, tasks=200, first_order=False, seed=0):
    """Per-task meta-gradient estimates `[tasks, 2]` (∂/∂μ, ∂/∂ℓ) of the
    post-update expected return."""
    policy = rl_bandit.linear_gaussian_policy(MEAN, LOG_STD)
    model = rl.MAMLRL(policy, rl_bandit.Bandit(), inner_lr=LR, num_trajectories=trajectories,
                      estimator=estimator, first_order=first_order, outer="gradient",
                      baseline=False, normalize_advantages=False, discount=1.0, seed=seed)
    goals = tf.fill([tasks, 1], GOAL)
    _, grads = tf.function(model.meta_gradients)(goals)
    by_name = {v.path.split("/")[-1]: g for v, g in zip(policy.trainable_variables, grads)}
    return np.stack([np.reshape(by_name["kernel"], [tasks]),
                     np.reshape(by_name["log_std"], [tasks])], axis=1)


def z_scores(values, expected):
    mean = values.mean(0)
    standard_error = values.std(0, ddof=1) / np.sqrt(len(values))
    return (mean - expected) / standard_error, standard_error


def test_dice_meta_gradient_converges_to_the_analytic_gradient():
    exact = rl_bandit.exact_meta_gradient(MEAN, LOG_STD, GOAL, LR)
    few, many = estimates("dice", 100), estimates("dice", 2000)
    z, standard_error = z_scores(many, exact)
    assert np.all(np.abs(z) < 4), (z, exact)
    assert np.all(standard_error < 0.05), standard_error
    # With few trajectories the estimate carries an O(α²/N) bias (the step's own noise);
    # it shrinks as the trajectories grow.
    error_few = np.linalg.norm(few.mean(0) - exact)
    error_many = np.linalg.norm(many.mean(0) - exact)
    assert error_many < 0.5 * error_few, (error_few, error_many)


def test_naive_surrogate_meta_gradient_is_biased():
    exact = rl_bandit.exact_meta_gradient(MEAN, LOG_STD, GOAL, LR)
    naive = estimates("naive", 1000)
    z, _ = z_scores(naive, exact)
    # Its Hessian misses the score-function term E[r ∇logπ ∇logπᵀ]: many standard errors off.
    assert np.any(np.abs(z) > 10), z
    dice = estimates("dice", 1000)
    assert np.linalg.norm(dice.mean(0) - exact) < 0.25 * np.linalg.norm(naive.mean(0) - exact)


def test_lvc_equals_dice_on_one_step_tasks():
    np.testing.assert_allclose(estimates("lvc", 50, tasks=20), estimates("dice", 50, tasks=20),
                               rtol=1e-4, atol=1e-5)


def test_first_order_estimates_the_gradient_at_the_adapted_policy():
    expected = rl_bandit.first_order_gradient(MEAN, LOG_STD, GOAL, LR)
    z, _ = z_scores(estimates("dice", 1000, first_order=True), expected)
    assert np.all(np.abs(z) < 4), z
    assert not np.allclose(expected, rl_bandit.exact_meta_gradient(MEAN, LOG_STD, GOAL, LR),
                           atol=0.2)
