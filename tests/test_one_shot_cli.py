"""The one-shot recipe from the command line: its flags (what they build and
the errors naming them), the `omniglot_minimal_one_shot` preset under a
tiny time budget (where training stopped, the within-alphabet error and the
learning curve against an independent evaluation of the saved weights) and
its raw-image SavedModel."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta import episode
from keras_meta.cli import config as run_config
from keras_meta.cli import budget, models, presets, streams
from tests.test_callbacks import numpy_mean_ci
from tests.test_train_cli import run_cli, served_and_predicted

BUDGET = 4  # seconds of training in the preset run
MAXIMUM = 100000  # its --iterations
TRIALS = 100  # its --within_alphabet_trials (the preset's 1,000 shortened)


def recipe(**changes):
    """The preset's settings given as flags, with `changes`."""
    return run_config.from_settings(**{**presets.PRESETS["omniglot_minimal_one_shot"],
                                       **changes})


@pytest.mark.parametrize("given, flag", [
    (dict(dataset="sinusoid", augment="characters"), "--augment"),
    (dict(dataset="cifar_fs", image_size=32), "--image_size"),
    (dict(algorithm="finetune", train_within_alphabet=True), "--train_within_alphabet"),
    (dict(algorithm="maml", learn_scale=True), "--learn_scale"),
    (dict(algorithm="matching", eval_refinement_steps=3), "--eval_refinement_steps"),
    (dict(algorithm="maml", within_alphabet_trials=10), "--within_alphabet_trials"),
    (dict(algorithm="protonet", curve_points=3, within_alphabet_trials=10), "--curve_points"),
    (dict(algorithm="protonet", time_budget=0.0), "--time_budget"),
    (dict(algorithm="protonet", within_alphabet_trials=1), "--within_alphabet_trials"),
    (dict(algorithm="protonet", curve_points=3, time_budget=60.0), "--curve_points"),
    (dict(preset="omniglot_minimal_one_shot", augment="none"), "--augment"),
    (dict(preset="omniglot_minimal_one_shot", val_tasks=10), "--val_tasks"),
    (dict(dataset="navigation_2d", learning_rate_schedule="cosine"), "--learning_rate_schedule"),
])
def test_one_shot_flags_that_do_not_apply_name_the_flag(given, flag):
    with pytest.raises(run_config.UsageError, match=flag + "="):
        run_config.from_settings(**given)


def test_preset_keeps_its_recipe_and_takes_a_shorter_budget():
    config = run_config.from_settings(preset="omniglot_minimal_one_shot", time_budget=5,
                                      iterations=20, within_alphabet_trials=50)
    assert (config.time_budget, config.iterations, config.log_every) == (5, 20, 2)
    assert config.within_alphabet_trials == 50
    assert (config.algorithm, config.ways, config.shots, config.query_shots,
            config.meta_batch_size) == ("protonet", 20, 1, 2, 2)
    assert config.train_within_alphabet and config.augment == "characters"
    assert (config.refinement_steps, config.eval_refinement_steps) == (0, 3)
    assert config.export_raw_images
    assert (config.val_tasks, config.image_shape, config.learn_scale) == (0, (28, 28, 1), False)
    assert set(run_config.AUGMENTATIONS) == {"none", *streams.AUGMENTATIONS}
    long = run_config.from_settings(preset="omniglot_minimal_one_shot_60min")
    assert (long.time_budget, long.within_alphabet_trials) == (3600, 1000)
    model = models.build_model(config)
    assert isinstance(model, km.ProtoNet) and model.eval_refinement_steps == 3


def test_image_size_sizes_the_model_the_streams_and_the_raw_image_preprocessing(
        omniglot_data_dir):
    config = recipe(image_size=20, data_dir=omniglot_data_dir, within_alphabet_trials=4)
    model = models.build_model(config)
    assert model.embedding.input_shape == (None, 20, 20, 1)
    for stream in (streams.episodes(config, "test", 2), streams.within_alphabet_trials(config)):
        inputs, _ = next(iter(stream))
        assert inputs["support_x"].shape[2:] == (20, 20, 1)
    drawings = np.full((2, 105, 105, 3), 255, np.uint8)
    drawings[:, 30:75, 30:75] = 0  # a black blot on white
    raw = streams.raw_image_preprocess(config)(drawings).numpy()
    np.testing.assert_allclose(raw, km.data.omniglot_preprocess(drawings, image_size=20),
                               atol=1e-6)
    assert raw.shape == (2, 20, 20, 1) and raw.max() == 1.0 and raw.min() == 0.0


def test_training_stream_is_within_alphabet_and_distorted_with_a_seed(omniglot_data_dir,
                                                                      omniglot_reference):
    """Training episodes hold one alphabet's characters; their support and
    query images are the drawings distorted by `characters()` under the
    key of (seed, batch index); the test episodes are left as drawn."""
    config = recipe(ways=5, data_dir=omniglot_data_dir)
    plain = recipe(ways=5, augment="none", data_dir=omniglot_data_dir)
    model = models.build_model(config)
    (augmented, labels), = streams.training(config, model).take(1)
    (drawn, drawn_labels), = streams.training(plain, model).take(1)
    np.testing.assert_array_equal(labels, drawn_labels)
    for tensors in (drawn["support_x"].numpy(), drawn["query_x"].numpy()):
        for task in tensors:
            alphabets = {omniglot_reference["alphabet"][omniglot_reference["lookup"][
                image.tobytes()][0]] for image in task}
            assert len(alphabets) == 1
    key = tf.random.experimental.stateless_fold_in(tf.constant([config.seed, 0], tf.int64),
                                                   tf.constant(0, tf.int64))  # batch 0
    keys = tf.random.experimental.stateless_split(key, 2)
    transform = km.data.augment.characters()
    for i, name in enumerate(("support_x", "query_x")):
        images = drawn[name].numpy()
        expected = transform(images.reshape(-1, 28, 28, 1), keys[i]).numpy()
        np.testing.assert_allclose(augmented[name].numpy().reshape(-1, 28, 28, 1), expected,
                                   atol=1e-6)
        assert np.abs(expected - images.reshape(-1, 28, 28, 1)).max() > 0.5
    for name in ("support_x", "query_x"):
        np.testing.assert_array_equal(next(iter(streams.episodes(config, "test", 2)))[0][name],
                                      next(iter(streams.episodes(plain, "test", 2)))[0][name])


@pytest.fixture(scope="module")
def preset_run(tmp_path_factory, omniglot_data_dir):
    out = tmp_path_factory.mktemp("one_shot")
    result = run_cli("--preset=omniglot_minimal_one_shot", f"--time_budget={BUDGET}",
                     f"--iterations={MAXIMUM}", f"--within_alphabet_trials={TRIALS}",
                     "--curve_points=3", "--filters=8",
                     "--test_tasks=4", "--verbose=0", f"--data_dir={omniglot_data_dir}",
                     f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-4000:]
    with open(out / "results.json") as file:
        return out, result.stdout, json.load(file)


def numpy_trial_errors(model, config):
    """Each trial's error from `model.predict`, over its real queries, `[trials]`."""
    errors = []
    for inputs, query_y in streams.within_alphabet_trials(config).take(
            -(-config.within_alphabet_trials // streams.EVAL_TASKS_PER_BATCH)).as_numpy_iterator():
        wrong = np.argmax(model.predict(inputs, verbose=0), axis=-1) != query_y
        real = inputs.get(episode.QUERY_MASK, np.ones_like(wrong))
        errors.extend((wrong * real).sum(axis=1) / real.sum(axis=1))
    return np.array(errors[:config.within_alphabet_trials])


def test_time_budget_stops_training_and_records_the_iterations(preset_run):
    out, _, results = preset_run
    train = results["train"]
    model = keras.saving.load_model(out / "model.keras")
    assert train["iterations_run"] == int(model.optimizer.iterations.numpy())
    assert train["iterations_run"] == train["iterations_this_process"] < MAXIMUM
    assert BUDGET <= train["training_seconds"] <= train["seconds"]
    assert results["config"]["time_budget"] == BUDGET


def test_within_alphabet_error_is_the_saved_models(preset_run, omniglot_data_dir):
    out, stdout, results = preset_run
    trials = results["within_alphabet"]
    assert trials["trials"] == TRIALS
    model = keras.saving.load_model(out / "model.keras")
    assert model.eval_refinement_steps == 3
    config = recipe(data_dir=omniglot_data_dir, within_alphabet_trials=TRIALS)
    mean, half_width = numpy_mean_ci(numpy_trial_errors(model, config))
    assert trials["error"] == pytest.approx(mean, abs=1e-9)
    assert trials["ci"] == pytest.approx(half_width, rel=1e-6)
    assert f"{100 * mean:.2f}% ± {100 * half_width:.2f}%" in stdout


def test_learning_curve_rises_in_time_and_ends_at_the_final_model(preset_run):
    _, _, results = preset_run
    curve = results["learning_curve"]
    assert len(curve) == 3
    seconds = [point["seconds"] for point in curve]
    iterations = [point["iterations"] for point in curve]
    assert seconds == sorted(seconds) and len(set(seconds)) == 3
    assert iterations == sorted(iterations)
    assert seconds[0] >= BUDGET / 3 and seconds[1] >= 2 * BUDGET / 3
    assert curve[-1]["iterations"] == results["train"]["iterations_run"]
    assert curve[-1]["seconds"] == results["train"]["training_seconds"]
    assert (curve[-1]["error"], curve[-1]["ci"]) == (results["within_alphabet"]["error"],
                                                     results["within_alphabet"]["ci"])


@pytest.mark.parametrize("size, channels", [(105, 1), (60, 3)])
def test_saved_model_serves_raw_drawings_of_any_size(preset_run, omniglot_reference, size,
                                                     channels):
    """`serve` takes uint8 black-on-white drawings `[T, N, size, size,
    channels]` and predicts what the trained model does on them
    preprocessed at 28 pixels."""
    out, _, _ = preset_run
    drawings = omniglot_reference["image"][:40]                  # uint8 [40, 105, 105, 3]
    drawings = tf.image.resize(drawings, (size, size), method="nearest").numpy()
    drawings = drawings[..., :channels].astype(np.uint8)
    served, expected = served_and_predicted(out, drawings[None, :20],
                                            np.arange(20, dtype=np.int32)[None],
                                            drawings[None, 20:])
    assert served.shape == (1, 20, 20)
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)


class FakeClock:
    """Seconds that the test sets."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("by_time", [True, False])
def test_cosine_learning_rate_follows_half_a_cosine_over_the_budget(by_time):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    clock = FakeClock()
    schedule = budget.CosineLearningRate(seconds=60.0 if by_time else None, iterations=40,
                                         clock=clock)
    schedule.set_model(model)
    schedule.on_train_begin()
    # Half a cosine from 0.1 to 0: 0.1 · cos²(π f / 2), f the share of the budget used.
    for share, expected in ((0.0, 0.1), (0.25, 0.1 * np.cos(np.pi / 8) ** 2), (0.5, 0.05),
                            (1.0, 0.0), (1.5, 0.0)):
        if by_time:
            clock.now = 100.0 + 60.0 * share
        else:
            model.optimizer.iterations.assign(int(40 * share))
        schedule.on_train_batch_begin(0)
        assert float(model.optimizer.learning_rate) == pytest.approx(expected, abs=1e-7)
    with pytest.raises(ValueError, match="seconds"):
        budget.CosineLearningRate()
