"""benchmarks/rl_adaptation.py: its analytic navigation oracle is what the
environment gives the greedy policy, no policy beats it, its table shows
the stored figures, and the README shows the committed results' tables."""

import json
import pathlib

import numpy as np
import pytest
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


def test_table_gives_the_paired_difference_from_the_pretrained_policy(tmp_path):
    rng = np.random.default_rng(0)
    pretrained = rng.normal(-100.0, 30.0, (40, 4))
    maml = pretrained + rng.normal(5.0, 2.0, (40, 4))
    row = {"meta_iterations": 1, "train_env_steps": 1, "train_seconds": 1.0}
    results = {"methods": {
        name: dict(row, returns=returns.tolist(),
                   mean_ci=rl_adaptation.summary(returns))
        for name, returns in (("maml_rl_lvc", maml), ("pretrained", pretrained))}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    line = next(line for line in rl_adaptation.table(str(path)).splitlines()
                if line.startswith("- maml_rl_lvc − pretrained"))
    difference = maml[:, 1] - pretrained[:, 1]
    half_width = 1.96 * difference.std(ddof=1) / np.sqrt(40)
    mean, half = (float(x) for x in line.split(": ")[1].split(", ")[1].split(" ± "))
    assert mean == pytest.approx(difference.mean(), abs=0.051)
    assert half == pytest.approx(half_width, rel=0.05)  # a t or normal interval


def run_benchmark(monkeypatch, *flags):
    monkeypatch.setattr("sys.argv", ["rl_adaptation.py", *flags])
    rl_adaptation.main()


def test_rows_are_added_to_a_results_file_of_the_same_settings_only(monkeypatch, tmp_path):
    path = tmp_path / "navigation.json"
    run_benchmark(monkeypatch, "--methods=oracle", "--test_tasks=5", f"--output={path}")
    first = json.loads(path.read_text())
    assert list(first["methods"]) == ["oracle"] and first["config"]["test_tasks"] == 5
    goals = rl.Navigation2D().sample_tasks(5, tf.constant([12345, 0])).numpy()
    np.testing.assert_allclose(np.asarray(first["methods"]["oracle"]["returns"])[:, 0],
                               rl_adaptation.oracle_returns(rl.Navigation2D(), goals))
    first["methods"]["kept"] = first["methods"]["oracle"]
    path.write_text(json.dumps(first))
    run_benchmark(monkeypatch, "--methods=oracle", "--test_tasks=5", f"--output={path}")
    assert list(json.loads(path.read_text())["methods"]) == ["oracle", "kept"]
    with pytest.raises(SystemExit, match="other settings"):
        run_benchmark(monkeypatch, "--methods=oracle", "--test_tasks=5", "--seed=1",
                      f"--output={path}")
    with pytest.raises(SystemExit):
        run_benchmark(monkeypatch, "--methods=oracle,best", f"--output={path}")


def test_the_maml_rl_rows_differ_in_their_estimator_only(monkeypatch, tmp_path):
    built = []

    class RecordingMAMLRL(rl.MAMLRL):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append((self.inner_steps, self.estimator))

    monkeypatch.setattr(rl_adaptation.km.rl, "MAMLRL", RecordingMAMLRL)
    run_benchmark(monkeypatch, "--methods=maml_rl,maml_rl_lvc,maml_rl_naive,random_init",
                  "--iterations=0", "--test_tasks=2", "--trajectories=2",
                  f"--output={tmp_path / 'rows.json'}")
    assert built == [(1, "dice"), (1, "lvc"), (1, "naive"), (0, "dice")]
    table = rl_adaptation.table(str(tmp_path / "rows.json"))
    assert "ProMP's low-variance LVC surrogate" in table and "naive surrogate" in table


@pytest.mark.parametrize("name", ["rl_navigation", "rl_half_cheetah_vel",
                                  "rl_half_cheetah_vel_300"])
def test_the_readme_shows_the_committed_results(name):
    """Every line of each committed results file's table (rows, paired
    differences, timing lines) appears in the README as `--table` prints it."""
    root = pathlib.Path(rl_adaptation.__file__).parent.parent
    readme = (root / "README.md").read_text()
    table = rl_adaptation.table(root / "benchmarks" / "results" / f"{name}.json")
    missing = [line for line in table.splitlines() if line and line not in readme]
    assert not missing
