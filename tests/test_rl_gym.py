"""Gymnasium task families: the cheetah rewards against Gymnasium's own
forward velocity, clear errors, and keras_meta importing without Gymnasium."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_meta import rl

gymnasium = pytest.importorskip("gymnasium")


def mujoco_available():
    try:
        gymnasium.make("HalfCheetah-v5").close()
        return True
    except Exception:
        return False


needs_mujoco = pytest.mark.skipif(not mujoco_available(), reason="MuJoCo not installed")


@needs_mujoco
@pytest.mark.parametrize("family_class", [rl.HalfCheetahVelocity, rl.HalfCheetahDirection])
def test_cheetah_rewards_follow_gymnasiums_forward_velocity(family_class):
    family = family_class(horizon=8)
    task = family.sample_tasks(1, tf.constant([3, 4]))[0]
    actions = np.random.default_rng(0).uniform(-1.5, 1.5, size=(8, 2, 6)).astype("float32")
    state, obs = family.reset(task, 2, tf.constant([0, 9], tf.int64))
    rewards = []
    for t in range(8):
        state, obs, reward = family.step(state, tf.constant(actions[t]), task)
        rewards.append(reward.numpy())
    rewards = np.stack(rewards, 1)                                 # [2, 8]
    seed = int(np.sum([0, 9]) % (2 ** 31 - 1))
    for i in range(2):
        env = gymnasium.make("HalfCheetah-v5")
        env.reset(seed=seed + i)
        for t in range(8):
            action = np.clip(actions[t, i], -1, 1)
            _, _, _, _, info = env.step(action)
            velocity = info["x_velocity"]
            cost = 0.05 * np.sum(action ** 2)
            target = float(task[0])
            expected = (-abs(velocity - target) if family_class is rl.HalfCheetahVelocity
                        else target * velocity) - cost
            np.testing.assert_allclose(rewards[i, t], expected, rtol=1e-5, atol=1e-5)
        env.close()


@needs_mujoco
def test_cheetah_tasks_follow_the_paper():
    velocity = rl.HalfCheetahVelocity().sample_tasks(500, tf.constant([0, 0])).numpy()
    assert velocity.min() >= 0 and velocity.max() <= 2 and abs(velocity.mean() - 1) < 0.1
    direction = rl.HalfCheetahDirection().sample_tasks(500, tf.constant([0, 0])).numpy()
    assert set(np.unique(direction)) == {-1.0, 1.0}
    assert rl.HalfCheetahVelocity().horizon == 200


@needs_mujoco
@pytest.mark.slow
def test_maml_rl_trains_on_a_gymnasium_family():
    family = rl.HalfCheetahVelocity(horizon=5)
    model = rl.MAMLRL(rl.mlp_policy(17, 6, hidden=(8,), seed=0), family, num_trajectories=2,
                      cg_iterations=2)
    model.compile()
    history = model.fit(family.task_stream(2, seed=0), steps_per_epoch=1, verbose=0)
    assert np.isfinite(history.history["return_1"][0])


def test_an_environment_without_a_task_parameter_is_refused():
    with pytest.raises(ValueError, match="`env` .*has no task parameter"):
        rl.GymTaskFamily("CartPole-v1", horizon=10)
    family = rl.GymTaskFamily("CartPole-v1", horizon=10, reward_fn=lambda task, r, info, a: r)
    assert (family.action_kind, family.action_dim, family.observation_dim) == ("discrete", 2, 4)
    with pytest.raises(ValueError, match="`policy` does not match"):
        rl.MAMLRL(rl.mlp_policy(4, 2, hidden=(4,)), family)
    rl.MAMLRL(rl.mlp_policy(4, 2, hidden=(4,), discrete=True), family)


def test_keras_meta_imports_without_gymnasium_and_names_the_extra():
    code = ("import sys; sys.modules['gymnasium'] = None\n"
            "import keras_meta as km\n"
            "try:\n    km.rl.HalfCheetahVelocity()\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert 'pip install "keras_meta[rl]"' in out.stdout, out.stderr[-2000:]
