"""`python -m keras_meta.train` in a subprocess: a tiny run end to end (its
printed and stored figures checked against an independent evaluation of
the saved model), and bad flags."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_meta as km
from tests.test_callbacks import numpy_mean_ci, tensorboard_scalars

TINY = ["--iterations=4", "--log_every=2", "--meta_batch_size=2", "--query_shots=2",
        "--test_tasks=10", "--val_tasks=4", "--filters=4", "--eval_inner_steps=2", "--verbose=2",
        "--export_raw_images"]


def run_cli(*flags, cwd=None):
    return subprocess.run([sys.executable, "-m", "keras_meta.train", *flags], cwd=cwd,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def accuracy_per_task(model, split, num_tasks, data_dir, seed):
    """NumPy accuracy of each of the first tasks of the CLI's `split` stream."""
    stream = km.data.omniglot_episodes(split, ways=5, shots=1, query_shots=2, meta_batch_size=20,
                                       seed=seed, data_dir=data_dir)
    inputs, query_y = next(stream.as_numpy_iterator())
    predictions = model.predict(inputs, verbose=0)
    return np.mean(np.argmax(predictions, axis=-1) == query_y, axis=1)[:num_tasks]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, omniglot_data_dir):
    out = tmp_path_factory.mktemp("run")
    result = run_cli(*TINY, f"--data_dir={omniglot_data_dir}", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-4000:]
    with open(out / "results.json") as file:
        return out, result.stdout, json.load(file)


def test_prints_and_stores_the_test_accuracy_of_the_saved_model(tiny_run, omniglot_data_dir):
    out, stdout, results = tiny_run
    test = results["test"]
    assert test["tasks"] == 10 and test["seed"] == 1 and test["inner_steps"] == 2
    printed = re.search(r"accuracy on 10 new tasks .*: ([0-9.]+)% ± ([0-9.]+)% \(95% CI\)", stdout)
    assert printed, stdout[-2000:]
    assert float(printed.group(1)) == pytest.approx(100 * test["test_accuracy"], abs=0.006)
    assert float(printed.group(2)) == pytest.approx(100 * test["test_accuracy_ci"], abs=0.006)

    model = keras.saving.load_model(out / "model.keras")
    mean, half_width = numpy_mean_ci(accuracy_per_task(model, "test", 10, omniglot_data_dir, 1))
    assert test["test_accuracy"] == pytest.approx(mean, abs=1e-9)
    assert test["test_accuracy_ci"] == pytest.approx(half_width, rel=1e-6)
    assert results["config"]["iterations"] == results["train"]["iterations"] == 4
    assert results["train"]["tasks_per_second"] > 0


def test_best_checkpoint_reloads_with_its_validation_accuracy(tiny_run, omniglot_data_dir):
    out, _, results = tiny_run
    best = keras.saving.load_model(out / "checkpoints" / "best.keras")
    accuracy = accuracy_per_task(best, "validation", 4, omniglot_data_dir, 2)
    assert max(results["history"]["val_accuracy"]) == pytest.approx(accuracy.mean(), abs=1e-9)


def test_tensorboard_csv_figures_and_saved_model_are_written(tiny_run):
    out, _, results = tiny_run
    train = tensorboard_scalars(out / "logs" / "train")
    assert train["epoch_accuracy"] == pytest.approx(results["history"]["accuracy"])
    assert len(train["epoch_tasks/s"]) == 2
    validation = tensorboard_scalars(out / "logs" / "validation")
    assert validation["epoch_accuracy_step_2"] == pytest.approx(
        results["history"]["val_accuracy_step_2"])
    test = tensorboard_scalars(out / "logs" / "test")
    assert test["accuracy"] == pytest.approx([results["test"]["test_accuracy"]])
    assert test["accuracy_by_inner_step"] == pytest.approx(
        [results["test"][f"test_accuracy_step_{k}"] for k in range(3)])
    with open(out / "history.csv") as file:
        assert len(file.read().strip().splitlines()) == 1 + 2
    for name in ("learning_curves.png", "adaptation.png", "saved_model/saved_model.pb"):
        assert (out / name).stat().st_size > 0
    assert not (out / "backup").exists()


def test_saved_model_serves_raw_drawings(tiny_run, omniglot_data_dir):
    """With --export_raw_images, `serve` takes the test drawings as TFDS decodes
    them (uint8, 105×105×3) and predicts what the saved model does on
    their preprocessed features."""
    import tensorflow_datasets as tfds

    out, _, _ = tiny_run
    drawings = tfds.as_numpy(tfds.load("omniglot_minimal", split="train[:10]",
                                       data_dir=omniglot_data_dir, batch_size=-1))["image"]
    served, expected = served_and_predicted(out, drawings[None, :5],
                                            np.array([[0, 1, 2, 3, 4]], np.int32),
                                            drawings[None, 5:])
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-5)


def served_and_predicted(out, support_x, support_y, query_x):
    """The logits of the run in `out` for one task of raw uint8 drawings
    (`[1, N, H, W, C]`): from its SavedModel's `serve`, and from its
    `model.keras` on the drawings preprocessed by `km.data.omniglot_preprocess`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out / "saved_model"))
    served = loaded.serve(support_x=support_x, support_y=support_y, query_x=query_x).numpy()
    model = keras.saving.load_model(out / "model.keras")
    features = {"support_x": km.data.omniglot_preprocess(support_x[0]).numpy()[None],
                "support_y": support_y,
                "query_x": km.data.omniglot_preprocess(query_x[0]).numpy()[None]}
    return served, model.predict(features, verbose=0)


@pytest.mark.slow  # tests/test_distribute.py checks the mirrored step in the default suite
def test_mirrored_run_on_two_cpu_devices_equals_the_one_device_run(tiny_run, omniglot_data_dir,
                                                                    tmp_path):
    """The tiny run again with `--strategy=mirrored --cpu_devices=2`: each
    meta-batch split over 2 replicas, the same training losses, validation
    and test results; results.json records the strategy and its replicas."""
    _, _, one_device = tiny_run
    result = run_cli(*TINY, "--strategy=mirrored", "--cpu_devices=2",
                     f"--data_dir={omniglot_data_dir}", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-4000:]
    with open(tmp_path / "results.json") as file:
        mirrored = json.load(file)
    assert one_device["strategy"] == {"name": "default", "replicas": 1}
    assert mirrored["strategy"] == {"name": "mirrored", "replicas": 2}
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert mirrored["history"][name] == pytest.approx(one_device["history"][name], rel=1e-4)
    for name in ("test_loss", "test_accuracy"):
        assert mirrored["test"][name] == pytest.approx(one_device["test"][name], rel=1e-4)


@pytest.mark.parametrize("flags, flag", [
    (["--algorithm=foo"], "--algorithm"),
    (["--ways=1"], "--ways"),
    (["--preset=maml_omniglot_5w1s", "--ways=20"], "--ways"),
    (["--strategy=mirrored", "--cpu_devices=2", "--meta_batch_size=3"], "--meta_batch_size"),
    (["--dataset=sinusoid", "--export_raw_images"], "--export_raw_images"),
    (["--dtype_policy=float16"], "--dtype_policy"),
])
def test_bad_flags_fail_with_one_line_naming_the_flag(flags, flag, tmp_path):
    result = run_cli(*flags, f"--output_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()
              and not re.match(r"[IWE]\d{4} ", line)]
    assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1], result.stderr
    assert errors[0].startswith("keras_meta.train: error:") and flag + "=" in errors[0]
    assert not list(tmp_path.iterdir())  # nothing was written


def test_helpfull_documents_every_flag():
    result = run_cli("--helpfull")
    section = result.stdout.split("keras_meta/train.py:")[1].split("\n\n")[0]
    documented = dict(re.findall(r"^  --(?:\[no\])?(\w+): (.*)$", section, re.M))
    assert {"preset", "algorithm", "dataset", "ways", "shots", "query_shots", "meta_batch_size",
            "inner_lr", "inner_steps", "eval_inner_steps", "first_order", "iterations", "seed",
            "output_dir", "strategy", "cpu_devices", "recompute_inner_steps",
            "dtype_policy"} <= set(documented)
    assert all(len(text.strip()) > 10 for text in documented.values()), documented
    assert "Meta-trains a keras_meta model" in result.stdout


@pytest.mark.slow
def test_sinusoid_run_reports_the_test_mse_of_the_saved_model(tmp_path):
    result = run_cli("--dataset=sinusoid", "--iterations=20", "--log_every=10",
                     "--test_tasks=40", "--val_tasks=20", "--eval_inner_steps=2", "--verbose=0",
                     f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-4000:]
    with open(tmp_path / "results.json") as file:
        test = json.load(file)["test"]
    printed = re.search(r"MSE on 40 new sinusoid tasks .*: ([0-9.]+) ± ([0-9.]+)", result.stdout)
    assert float(printed.group(1)) == pytest.approx(test["test_loss"], abs=6e-4)

    model = keras.saving.load_model(tmp_path / "model.keras")
    errors = []
    for inputs, query_y in km.data.sinusoid_episodes(meta_batch_size=20, seed=1) \
            .take(2).as_numpy_iterator():
        errors.append(np.mean((model.predict(inputs, verbose=0) - query_y) ** 2, axis=(1, 2)))
    mean, half_width = numpy_mean_ci(np.concatenate(errors))
    assert test["test_loss"] == pytest.approx(mean, rel=1e-5)
    assert test["test_loss_ci"] == pytest.approx(half_width, rel=1e-4)


@pytest.mark.slow
def test_a_mixed_bfloat16_run_trains_and_saves_its_policy(tmp_path):
    result = run_cli("--dataset=sinusoid", "--dtype_policy=mixed_bfloat16", "--iterations=4",
                     "--log_every=2", "--test_tasks=4", "--val_tasks=0", "--verbose=0",
                     f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-4000:]
    with open(tmp_path / "results.json") as file:
        results = json.load(file)
    assert results["config"]["dtype_policy"] == "mixed_bfloat16"
    assert np.isfinite(results["test"]["test_loss"])
    model = keras.saving.load_model(tmp_path / "model.keras")
    # Keras's Sequential.from_config keeps its layers' policies, not its own.
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert {layer.dtype_policy.name for layer in model.learner.layers} == {"mixed_bfloat16"}


def test_train_ways_sets_the_training_tasks_ways_only(omniglot_data_dir):
    from keras_meta.cli import config as run_config
    from keras_meta.cli import streams

    config = run_config.from_settings(algorithm="protonet", ways=3, train_ways=7, shots=1,
                                      query_shots=1, data_dir=omniglot_data_dir)
    for split, ways in (("train", 7), ("validation", 3), ("test", 3)):
        inputs, query_y = next(iter(streams.episodes(config, split, meta_batch_size=2)))
        assert inputs["support_y"].shape == (2, ways)
        assert sorted(np.unique(query_y.numpy())) == list(range(ways))
    with pytest.raises(run_config.UsageError, match="--train_ways=7 does not apply to "
                                                    "--algorithm=maml"):
        run_config.from_settings(algorithm="maml", train_ways=7)
    with pytest.raises(run_config.UsageError, match="--train_ways=7 does not apply to "
                                                    "--dataset=navigation_2d"):
        run_config.from_settings(dataset="navigation_2d", train_ways=7)
