"""benchmarks/rl_adaptation.py: its analytic navigation oracle is what the
environment gives the greedy policy, no policy beats it, and its table
shows the stored figures."""

import json

import numpy as np
import tensorflow as tf

from benchmarks import rl_adaptation
from keras_meta import rl


def test_the_analytic_oracle_is_the_environments_return_of_the_greedy_policy_and_the_best():
    family = rl.Navigation2D(horizon=30)
    goals = family.sample_tasks(6, tf.constant([3, 4])).numpy()
    oracle = rl_adaptation.oracle_returns(family, goals)
    for goal, expected in zip(goals, oracle):
        state, position = family.reset(goal, 1, tf.constant([0, 0]))
        total = 0.0
        for _ in range(family.horizon):
            state, position, reward = family.step(state, goal[None] - position, goal)
            total += float(reward[0])
        np.testing.assert_allclose(expected, total, rtol=1e-5)
        # Random velocity sequences (2,000 of them) never do better.
        rng = np.random.default_rng(0)
        actions = rng.uniform(-0.1, 0.1, (2000, family.horizon, 2))
        positions = np.cumsum(actions, axis=1)
        returns = -np.linalg.norm(positions - goal, axis=-1).sum(-1)
        assert returns.max() < expected


def test_table_shows_the_stored_figures(tmp_path):
    results = {"methods": {"maml_rl": {
        "mean_ci": [[-40.25, 3.5], [-19.34, 1.06], [-20.0, 1.0], [-21.0, 1.0]],
        "meta_iterations": 40, "train_env_steps": 3200000, "train_seconds": 567.6}},
        "timing": {"half_cheetah_vel": {
            "meta_batch_size": 40, "trajectories": 20, "horizon": 200, "iterations": 3,
            "first_iteration_seconds": 70.0, "seconds_per_iteration": 55.5,
            "env_steps_per_second": 5765.8}}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    table = rl_adaptation.table(str(path))
    assert ("| MAML-RL (TRPO outer step, DiCE inner surrogate) | -40.2 ± 3.5 | -19.3 ± 1.1 | "
            "-20.0 ± 1.0 | -21.0 ± 1.0 | 40 | 3,200,000 | 568 s |") in table
    assert "timing half_cheetah_vel: 55.50 s per meta-iteration" in table
    assert "5,766 environment steps/s" in table
