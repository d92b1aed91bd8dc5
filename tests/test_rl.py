"""keras_meta.rl against independent computations: NumPy references of the
navigation task, the baseline and the returns; dense solves for conjugate
gradient and the KL's Hessian; the TRPO step's constraint; determinism;
saving; clear errors for bad input."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_meta import rl
from tests import rl_bandit


def small_model(**kwargs):
    family = rl.Navigation2D(horizon=kwargs.pop("horizon", 6))
    options = dict(num_trajectories=5, inner_lr=0.1, cg_iterations=5, seed=3)
    options.update(kwargs)
    return rl.MAMLRL(rl.mlp_policy(2, 2, hidden=(4,), seed=1), family, **options)


def test_navigation_rollout_matches_a_numpy_reference():
    family = rl.Navigation2D(horizon=20)
    policy = rl.mlp_policy(2, 2, hidden=(8,), seed=0, init_log_std=-1.0)
    goal = np.array([0.3, -0.4], np.float32)
    data = rl.rollout(family, policy, policy.distribution, goal, 4, tf.constant([5, 6]))
    actions = data["actions"].numpy()
    position = np.zeros((4, 2))
    for t in range(20):
        np.testing.assert_allclose(data["observations"][:, t], position, atol=1e-5)
        params = policy(position.astype("float32")).numpy()
        np.testing.assert_allclose(data["params"][:, t], params, atol=1e-5)
        position = position + np.clip(actions[:, t], -0.1, 0.1)
        reward = -np.linalg.norm(position - goal, axis=1)
        np.testing.assert_allclose(data["rewards"][:, t], reward, atol=1e-5)
    # Actions are Gaussian around the policy's mean with its standard deviation.
    z = (actions - data["params"].numpy()[..., :2]) / np.exp(-1.0)
    assert abs(z.mean()) < 0.3 and 0.7 < z.std() < 1.3
    log_prob = (-0.5 * z ** 2 + 1.0 - 0.5 * math.log(2 * math.pi)).sum(-1)
    np.testing.assert_allclose(data["log_probs"], log_prob, atol=1e-4)


def test_goals_are_uniform_in_the_square_and_reproducible():
    tasks = next(iter(rl.Navigation2D().task_stream(2000, seed=4))).numpy()
    assert tasks.shape == (2000, 2) and np.all(np.abs(tasks) <= 0.5)
    assert abs(tasks.mean()) < 0.02 and abs(tasks.std() - 1 / math.sqrt(12)) < 0.01
    again = next(iter(rl.Navigation2D().task_stream(2000, seed=4))).numpy()
    np.testing.assert_array_equal(tasks, again)


def test_distributions_against_closed_forms():
    gaussian = rl.distributions.Gaussian(2)
    params = tf.constant([[0.5, -1.0, 0.2, -0.3]])
    other = tf.constant([[0.1, 0.0, -0.4, 0.1]])
    actions = tf.constant([[0.3, 0.7]])
    mean, std = np.array([0.5, -1.0]), np.exp([0.2, -0.3])
    expected = np.sum(-0.5 * ((actions[0] - mean) / std) ** 2 - np.log(std)
                      - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(gaussian.log_prob(params, actions)[0], expected, rtol=1e-5)
    # KL by Monte Carlo.
    samples = gaussian.sample(tf.repeat(params, 200000, 0), tf.random.normal([200000, 2], seed=0))
    monte_carlo = tf.reduce_mean(gaussian.log_prob(params, samples)
                                 - gaussian.log_prob(other, samples))
    np.testing.assert_allclose(gaussian.kl(params, other)[0], monte_carlo, rtol=0.02)
    categorical = rl.distributions.Categorical(3)
    logits = tf.constant([[1.0, 0.0, -1.0]])
    p = np.exp([1.0, 0.0, -1.0]) / np.exp([1.0, 0.0, -1.0]).sum()
    np.testing.assert_allclose(categorical.log_prob(logits, tf.constant([[2.0]]))[0],
                               np.log(p[2]), rtol=1e-5)
    draws = categorical.sample(tf.repeat(logits, 30000, 0),
                               categorical.draw_noise([30000], tf.constant([0, 1])))
    frequencies = np.bincount(draws.numpy()[:, 0].astype(int), minlength=3) / 30000
    np.testing.assert_allclose(frequencies, p, atol=0.015)


def test_returns_and_linear_baseline_against_numpy():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(3, 7)).astype("float32")
    expected = np.zeros_like(rewards)
    running = np.zeros(3)
    for t in reversed(range(7)):
        running = rewards[:, t] + 0.9 * running
        expected[:, t] = running
    returns = rl.returns_to_go(rewards, 0.9).numpy()
    np.testing.assert_allclose(returns, expected, rtol=1e-5)
    obs = rng.normal(size=(3, 7, 2)).astype("float32")
    time = np.broadcast_to(np.arange(7)[None, :, None] / 100.0, (3, 7, 1))
    features = np.concatenate([obs, obs ** 2, time, time ** 2, time ** 3, np.ones_like(time)], -1)
    flat = features.reshape(-1, 8)
    weights = np.linalg.solve(flat.T @ flat + 1e-5 * np.eye(8), flat.T @ returns.reshape(-1))
    values = rl.linear_baseline(obs, returns).numpy()
    np.testing.assert_allclose(values, (flat @ weights).reshape(3, 7), rtol=1e-3, atol=1e-4)
    advantages = rl.advantages(obs, rewards, 0.9).numpy()
    centred = returns - values
    np.testing.assert_allclose(advantages, (centred - centred.mean()) / centred.std(), atol=1e-3)


def test_surrogates_share_the_reinforce_gradient():
    rng = np.random.default_rng(1)
    sampling = tf.constant(rng.normal(size=(4, 5)), tf.float32)
    adv = tf.constant(rng.normal(size=(4, 5)), tf.float32)
    for estimator in ("dice", "lvc", "naive"):
        log_probs = tf.Variable(sampling)
        with tf.GradientTape() as tape:
            value = rl.inner_surrogate(log_probs, sampling, adv, estimator)
        np.testing.assert_allclose(tape.gradient(value, log_probs), adv / 20, rtol=1e-5,
                                   atol=1e-6, err_msg=estimator)
    # PPO's clipped surrogate stops the ratio's gradient outside 1 ± ε.
    log_probs = tf.Variable([[math.log(1.5), math.log(0.9)]])
    with tf.GradientTape() as tape:
        value = rl.clipped_surrogate(log_probs, tf.zeros([1, 2]), tf.ones([1, 2]), clip=0.2)
    np.testing.assert_allclose(value, (1.2 + 0.9) / 2, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(value, log_probs), [[0.0, 0.45]], atol=1e-6)


def flat_weights(model):
    return tf.concat([tf.reshape(v, [-1]) for v in model.policy.trainable_variables], 0)


def unflatten(model, flat):
    shapes = [v.shape for v in model.policy.trainable_variables]
    sizes = [int(np.prod(s)) for s in shapes]
    return [tf.reshape(p, s) for p, s in zip(tf.split(flat, sizes), shapes)]


def test_kl_hessian_vector_products_and_conjugate_gradient_match_dense_solves():
    model = small_model()
    tasks = model.family.sample_tasks(2, tf.constant([0, 0]))
    data = model.sample(tasks, 1, model.task_seeds(2))
    theta = flat_weights(model)
    size = int(theta.shape[0])

    def mean_kl(flat):
        weights = unflatten(model, flat)
        _, non_trainable = model.functional_policy.initial_weights()
        return tf.reduce_mean(tf.stack([model.task_objective(
            weights, non_trainable, {k: v[i] for k, v in data.items()}, "kl")
            for i in range(2)]))

    with tf.GradientTape() as outer:
        outer.watch(theta)
        with tf.GradientTape() as inner:
            inner.watch(theta)
            kl = mean_kl(theta)
        gradient = inner.gradient(kl, theta)
    hessian = outer.jacobian(gradient, theta).numpy()           # dense, [D, D]
    assert abs(float(kl)) < 1e-6 and np.abs(gradient).max() < 1e-5  # KL's minimum
    vector = tf.constant(np.random.default_rng(0).normal(size=size), tf.float32)
    hvp = tf.concat([tf.reshape(h, [-1]) for h in model.kl_hvp(data, unflatten(model, vector))],
                    0)
    np.testing.assert_allclose(hvp, hessian @ vector.numpy(), rtol=1e-3,
                               atol=1e-4 * np.abs(hessian).max())
    damped = hessian + 0.1 * np.eye(size)
    b = np.random.default_rng(1).normal(size=size)
    solution = rl.conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(damped), v),
                                     tf.constant(b), iterations=3 * size, residual_tol=1e-20)
    np.testing.assert_allclose(solution, np.linalg.solve(damped, b), rtol=1e-6, atol=1e-8)


def test_trpo_step_satisfies_the_kl_constraint_and_improves_the_surrogate():
    model = small_model(max_kl=0.005)
    tasks = model.family.sample_tasks(3, tf.constant([0, 1]))
    data = model.sample(tasks, 1, model.task_seeds(3))
    before = [tf.identity(v) for v in model.policy.trainable_variables]
    surrogate_before, kl_before = model.evaluate_at(data, before)
    model.trpo_update(data, model.policy.trainable_variables)
    after = [tf.identity(v) for v in model.policy.trainable_variables]
    surrogate_after, kl_after = model.evaluate_at(data, after)
    assert abs(float(kl_before)) < 1e-6
    assert 0 < float(kl_after) <= 0.005
    assert float(surrogate_after) > float(surrogate_before)
    assert any(not np.allclose(a, b) for a, b in zip(after, before))


def test_trpo_step_on_a_quadratic_lands_on_the_trust_region():
    h = tf.constant([[2.0, 0.5], [0.5, 1.0]])
    evaluate = lambda x: (tf.reduce_sum(x), 0.5 * tf.reduce_sum(x * tf.linalg.matvec(h, x)))
    step = rl.trpo_step(tf.zeros([2]), tf.ones([2]), lambda v: tf.linalg.matvec(h, v), evaluate,
                        max_kl=0.01, damping=0.0)
    direction = np.linalg.solve(h.numpy(), np.ones(2))
    expected = np.sqrt(2 * 0.01 / (direction @ h.numpy() @ direction)) * direction
    np.testing.assert_allclose(step["params"], expected, rtol=1e-4)
    np.testing.assert_allclose(step["kl"], 0.01, rtol=1e-3)
    assert bool(step["accepted"])


@pytest.mark.parametrize("outer", ["trpo", pytest.param("ppo", marks=pytest.mark.slow),
                                   pytest.param("gradient", marks=pytest.mark.slow)])
def test_fit_runs_each_outer_step_and_logs_finite_returns(outer):
    model = small_model(outer=outer, ppo_epochs=2, inner_steps=1, eval_inner_steps=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = flat_weights(model).numpy()
    history = model.fit(model.family.task_stream(2, seed=0), steps_per_epoch=2, epochs=1,
                        verbose=0)
    assert set(history.history) == {"loss", "kl", "return_0", "return_1"}
    assert all(np.isfinite(v[0]) for v in history.history.values())
    assert not np.allclose(flat_weights(model).numpy(), before)
    logs = model.evaluate(model.family.task_stream(2, seed=1), steps=1, return_dict=True,
                          verbose=0)
    assert {"return_0", "return_1", "return_2"} <= set(logs)


def test_same_seeds_give_the_same_returns():
    tasks = rl.Navigation2D().sample_tasks(3, tf.constant([2, 2]))
    model = small_model()
    first = model.adaptation_returns(tasks, steps=2, seed=5)
    second = small_model().adaptation_returns(tasks, steps=2, seed=5)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (3, 3)
    assert not np.array_equal(first, model.adaptation_returns(tasks, steps=2, seed=6))
    a, b = small_model(), small_model()
    for model in (a, b):
        model.compile()
        model.fit(model.family.task_stream(2, seed=0), steps_per_epoch=2, verbose=0)
    np.testing.assert_array_equal(flat_weights(a), flat_weights(b))


def test_saving_and_reloading_a_model_and_an_adapted_policy(tmp_path):
    model = small_model(inner_steps=2)
    model.compile()
    model.fit(model.family.task_stream(2, seed=0), steps_per_epoch=1, verbose=0)
    model.save(tmp_path / "maml_rl.keras")
    loaded = keras.saving.load_model(tmp_path / "maml_rl.keras")
    assert isinstance(loaded, rl.MAMLRL) and loaded.inner_steps == 2
    np.testing.assert_array_equal(flat_weights(loaded), flat_weights(model))
    tasks = tf.constant([[0.2, 0.3]])
    np.testing.assert_array_equal(loaded.adaptation_returns(tasks, 1, seed=1),
                                  model.adaptation_returns(tasks, 1, seed=1))
    adapted = model.adapted_policy([0.2, 0.3], steps=1, seed=0)
    assert isinstance(adapted, rl.GaussianPolicy)
    assert not np.allclose(adapted.get_weights()[0], model.policy.get_weights()[0])
    adapted.save(tmp_path / "adapted.keras")
    again = keras.saving.load_model(tmp_path / "adapted.keras")
    obs = np.zeros((2, 2), "float32")
    np.testing.assert_allclose(again(obs), adapted(obs), rtol=1e-6)
    np.testing.assert_allclose(model.predict(obs, verbose=0), model.policy(obs), rtol=1e-6)


def test_bad_input_gets_errors_naming_the_argument():
    family = rl.Navigation2D(horizon=3)
    with pytest.raises(ValueError, match="`policy` does not match"):
        rl.MAMLRL(rl.mlp_policy(2, 3, hidden=(4,), discrete=True), family)
    with pytest.raises(ValueError, match="`policy` does not match"):
        rl.MAMLRL(rl.mlp_policy(2, 3, hidden=(4,)), family)
    with pytest.raises(ValueError, match="`policy` must take observations of size 2"):
        rl.MAMLRL(rl.mlp_policy(5, 2, hidden=(4,)), family)
    with pytest.raises(TypeError, match="`family`"):
        rl.MAMLRL(rl.mlp_policy(2, 2, hidden=(4,)), "navigation")
    with pytest.raises(ValueError, match="`estimator`"):
        small_model(estimator="magic")
    with pytest.raises(ValueError, match="`outer`"):
        small_model(outer="adam")
    with pytest.raises(ValueError, match="`max_kl`"):
        small_model(max_kl=0.0)
    with pytest.raises(ValueError, match="`tasks`"):
        small_model().adaptation_returns(tf.zeros([2, 3]), 1)

    class Broken(rl_bandit.Bandit):
        def step(self, state, actions, task):
            state, obs, reward = super().step(state, actions, task)
            return state, obs, reward / 0.0

    model = rl.MAMLRL(rl_bandit.linear_gaussian_policy(0.0, 0.0), Broken(), num_trajectories=2)
    with pytest.raises(FloatingPointError, match="`family`"):
        model.adaptation_returns(tf.ones([1, 1]), 0)


def test_task_in_observation_appends_the_task_and_keeps_the_dynamics(tmp_path):
    family = rl.TaskInObservation(rl.Navigation2D(horizon=5))
    assert (family.observation_dim, family.action_dim, family.task_dim, family.horizon) == (
        4, 2, 2, 5)
    policy = rl.mlp_policy(4, 2, hidden=(8,), seed=0)
    goal = np.array([0.3, -0.4], np.float32)
    data = rl.rollout(family, policy, policy.distribution, goal, 3, tf.constant([1, 2]))
    position = np.zeros((3, 2))
    for t in range(5):
        np.testing.assert_allclose(data["observations"][:, t, :2], position, atol=1e-6)
        np.testing.assert_array_equal(data["observations"][:, t, 2:], np.tile(goal, (3, 1)))
        position = position + np.clip(data["actions"][:, t], -0.1, 0.1)
        np.testing.assert_allclose(data["rewards"][:, t],
                                   -np.linalg.norm(position - goal, axis=1), atol=1e-5)
    model = rl.MAMLRL(policy, family, num_trajectories=3, inner_lr=0.1, seed=1)
    model.save(tmp_path / "oracle.keras")
    loaded = keras.saving.load_model(tmp_path / "oracle.keras")
    assert isinstance(loaded.family, rl.TaskInObservation)
    assert loaded.family.family.horizon == 5
    np.testing.assert_array_equal(loaded.adaptation_returns(goal[None], 1, seed=2),
                                  model.adaptation_returns(goal[None], 1, seed=2))
    with pytest.raises(TypeError, match="`family`"):
        rl.TaskInObservation("navigation")
