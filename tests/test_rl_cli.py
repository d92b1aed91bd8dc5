"""`python -m keras_meta.train` on the meta-RL datasets: a tiny navigation run
end to end (its stored and printed test returns checked against the saved
model's `adaptation_returns` on independently drawn test tasks), the
presets, and bad flags."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta.cli import config as run_config
from keras_meta.cli import models
from tests.test_callbacks import numpy_mean_ci, tensorboard_scalars
from tests.test_train_cli import run_cli

TINY = ["--dataset=navigation_2d", "--iterations=2", "--log_every=1", "--meta_batch_size=2",
        "--trajectories=3", "--horizon=10", "--test_tasks=5", "--val_tasks=2",
        "--eval_inner_steps=2", "--verbose=2", "--seed=3"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rl_run")
    result = run_cli(*TINY, f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-4000:]
    with open(out / "results.json") as file:
        return out, result.stdout, json.load(file)


def test_stored_returns_are_the_saved_models_returns_on_the_test_tasks(tiny_run):
    out, stdout, results = tiny_run
    test = results["test"]
    assert test["tasks"] == 5 and test["seed"] == 4 and test["inner_steps"] == 2
    model = keras.saving.load_model(out / "model.keras")
    assert isinstance(model, km.rl.MAMLRL) and model.family.horizon == 10
    # Test tasks: the first batch of seed + 1 of the family, drawn here directly.
    tasks = km.rl.Navigation2D(horizon=10).sample_tasks(5, tf.constant([4, 0], tf.int64))
    expected = model.adaptation_returns(tasks, steps=2, seed=4)
    assert expected.shape == (5, 3)
    np.testing.assert_allclose(test["returns_per_task"], expected, rtol=1e-5, atol=1e-5)
    for step in range(3):
        mean, half_width = numpy_mean_ci(expected[:, step])
        assert test[f"test_return_step_{step}"] == pytest.approx(mean, abs=1e-4)
        assert test[f"test_return_step_{step}_ci"] == pytest.approx(half_width, rel=1e-3)
    assert test["test_return"] == test["test_return_step_2"]
    printed = re.search(r"test return on 5 new navigation_2d tasks .*: (-?[0-9.]+) ± "
                        r"([0-9.]+) \(95% CI\)", stdout)
    assert printed, stdout[-2000:]
    assert float(printed.group(1)) == pytest.approx(test["test_return"], abs=0.006)
    assert float(printed.group(2)) == pytest.approx(test["test_return_ci"], abs=0.006)
    line = re.search(r"test return after 0\.\.2 adaptation steps: (.*)", stdout).group(1)
    assert [float(v) for v in line.split()] == pytest.approx(
        [test[f"test_return_step_{k}"] for k in range(3)], abs=0.006)


def test_training_logs_returns_and_counts_environment_steps(tiny_run):
    out, stdout, results = tiny_run
    history = results["history"]
    for name in ("return_0", "return_1", "kl", "val_return_0", "val_return_2", "tasks/s"):
        assert len(history[name]) == 2, name
    # Returns are sums of −distance over 10 steps from the origin to goals in
    # [−0.5, 0.5]²: each within [−10 · (√0.5 + 10 · 0.1 · √2), 0].
    assert all(-10 * (np.sqrt(0.5) + np.sqrt(2)) <= r <= 0 for r in history["return_1"])
    train = results["train"]
    assert train["iterations"] == 2
    assert train["env_steps"] == 2 * 2 * 3 * 10 * 2  # iterations · tasks · trajectories · H · 2
    assert "return_0:" in stdout and "return_1:" in stdout
    board = tensorboard_scalars(out / "logs" / "train")
    assert board["epoch_return_1"] == pytest.approx(history["return_1"])
    test = tensorboard_scalars(out / "logs" / "test")
    means = np.mean(results["test"]["returns_per_task"], axis=0)
    assert test["return_by_inner_step"] == pytest.approx(means, abs=1e-4)
    assert test["return"] == pytest.approx([results["test"]["test_return"]], abs=1e-4)


def test_checkpoint_and_figures_are_written(tiny_run):
    out, _, results = tiny_run
    for name in ("adaptation.png", "learning_curves.png"):
        with open(out / name, "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(results["figures"]) == sorted(
        str(out / name) for name in ("adaptation.png", "learning_curves.png"))
    best = keras.saving.load_model(out / "checkpoints" / "best.keras")
    assert isinstance(best, km.rl.MAMLRL)
    assert not (out / "saved_model").exists()


def test_presets_carry_the_papers_protocol_and_build_its_policy():
    nav = run_config.from_settings(preset="maml_navigation_2d")
    assert (nav.dataset, nav.algorithm, nav.meta_batch_size, nav.trajectories, nav.inner_lr,
            nav.inner_steps, nav.max_kl, nav.iterations, nav.horizon) == (
        "navigation_2d", "maml", 20, 20, 0.1, 1, 0.01, 100, 100)
    for name in ("maml_half_cheetah_vel", "maml_half_cheetah_dir"):
        cheetah = run_config.from_settings(preset=name)
        assert (cheetah.meta_batch_size, cheetah.trajectories, cheetah.horizon,
                cheetah.inner_lr, cheetah.iterations) == (40, 20, 200, 0.1, 500)
    assert nav.test_tasks == 40 and not nav.export and nav.ways is None
    model = models.build_model(nav)
    dense = [layer for layer in model.policy.network.layers
             if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [100, 100, 2]
    assert [layer.activation.__name__ for layer in dense[:2]] == ["relu", "relu"]
    assert (model.inner_lr, model.num_trajectories, model.max_kl, model.outer,
            model.first_order) == (0.1, 20, 0.01, "trpo", False)
    assert run_config.from_settings(dataset="navigation_2d", algorithm="fomaml").first_order
    assert model.estimator == nav.estimator == "dice"
    naive = run_config.from_settings(preset="maml_half_cheetah_vel", estimator="naive")
    assert models.build_model(naive).estimator == "naive"
    assert run_config.from_settings(preset="maml_navigation_2d", iterations=5).iterations == 5


@pytest.mark.parametrize("given, flag", [
    (dict(dataset="navigation_2d", ways=5), "--ways=5"),
    (dict(dataset="navigation_2d", shots=1), "--shots=1"),
    (dict(dataset="half_cheetah_vel", learning_rate=0.01), "--learning_rate=0.01"),
    (dict(dataset="navigation_2d", test_shots=["5"]), "--test_shots=5"),
    (dict(dataset="navigation_2d", algorithm="protonet"), "--algorithm=protonet"),
    (dict(dataset="half_cheetah_dir", algorithm="reptile"), "--algorithm=reptile"),
    (dict(dataset="omniglot_minimal", trajectories=5), "--trajectories=5"),
    (dict(dataset="sinusoid", max_kl=0.1), "--max_kl=0.1"),
    (dict(dataset="omniglot_minimal", estimator="lvc"), "--estimator=lvc"),
    (dict(preset="maml_navigation_2d", meta_batch_size=10), "--meta_batch_size=10"),
    (dict(preset="maml_half_cheetah_vel", horizon=100), "--horizon=100"),
])
def test_flags_that_do_not_apply_are_errors_naming_the_flag(given, flag):
    with pytest.raises(run_config.UsageError, match=re.escape(flag)):
        run_config.from_settings(**given)


def test_bad_rl_flag_fails_with_one_line_naming_it(tmp_path):
    result = run_cli("--dataset=navigation_2d", "--ways=5", f"--output_dir={tmp_path}",
                     cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("keras_meta.train: error: --ways=5 does not apply to "
                           "--dataset=navigation_2d"), result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_half_cheetah_run_reports_the_saved_models_returns(tmp_path):
    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    result = run_cli("--dataset=half_cheetah_vel", "--iterations=1", "--meta_batch_size=2",
                     "--trajectories=2", "--horizon=5", "--test_tasks=3", "--eval_inner_steps=1",
                     "--verbose=0", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-4000:]
    with open(tmp_path / "results.json") as file:
        test = json.load(file)["test"]
    model = keras.saving.load_model(tmp_path / "model.keras")
    tasks = km.rl.HalfCheetahVelocity(horizon=5).sample_tasks(3, tf.constant([1, 0], tf.int64))
    expected = model.adaptation_returns(tasks, steps=1, seed=1)
    np.testing.assert_allclose(test["returns_per_task"], expected, rtol=1e-4, atol=1e-4)
