"""KerasTuner search over keras_meta's algorithms (`keras_meta.tune`): the
spaces default to the CLI's run, a search finds a better setting than a bad
default, it repeats for a seed, the best model reloads with its validation
result, Hyperband continues trials, the leaderboard ranks with confidence
intervals, and `python -m keras_meta.tune` writes it all."""

import csv
import json
import math
import os
import subprocess
import sys

import keras_tuner as kt
import numpy as np
import pytest

import keras_meta as km
from keras_meta.cli import config as run_config
from keras_meta.cli import models, streams
from keras_meta.tune import MetaHyperModel, Row, leaderboard, write_csv
from keras_meta.tune import hypermodel as hypermodel_module

SINUSOID = dict(steps_per_epoch=4, val_tasks=20)


def sinusoid_inner_lr_space(inner_lrs, default):
    """Every setting fixed but `inner_lr`, a choice among `inner_lrs`."""
    hp = kt.HyperParameters()
    hp.Choice("inner_lr", inner_lrs, default=default)
    for name, value in dict(learning_rate=1e-3, meta_batch_size=5, inner_steps=1,
                            eval_inner_steps=5).items():
        hp.Fixed(name, value)
    return hp


def search(directory, inner_lrs=(1e-4, 0.05, 0.2), default=1e-4, seed=3):
    hypermodel = MetaHyperModel("maml", "sinusoid", **SINUSOID)
    tuner = kt.RandomSearch(hypermodel, objective=hypermodel.objective,
                            max_trials=len(inner_lrs), seed=seed, directory=str(directory),
                            project_name="search",
                            hyperparameters=sinusoid_inner_lr_space(inner_lrs, default),
                            tune_new_entries=False)
    tuner.search(epochs=1, verbose=0)
    return hypermodel, tuner


@pytest.fixture(scope="module")
def sinusoid_search(tmp_path_factory):
    return search(tmp_path_factory.mktemp("tune"))


def test_searching_finds_a_better_inner_lr_than_a_bad_default(sinusoid_search):
    _, tuner = sinusoid_search
    rows = leaderboard(tuner)
    by_lr = {row.values["inner_lr"]: row for row in rows}
    assert set(by_lr) == {1e-4, 0.05, 0.2}  # each choice tried once
    assert rows[0].values["inner_lr"] != 1e-4
    assert rows[0].objective < by_lr[1e-4].objective  # MSE: lower is better
    assert [row.rank for row in rows] == [1, 2, 3] and rows[0].verdict == "best"
    assert rows[0].objective <= rows[1].objective <= rows[2].objective


def test_the_leaderboard_reads_each_trials_best_epoch_and_its_ci(sinusoid_search):
    _, tuner = sinusoid_search
    for row in leaderboard(tuner):
        trial = tuner.oracle.get_trial(row.trial_id)
        history = {o.step: o.value[0] for o in trial.metrics.get_history("val_loss")}
        ci = {o.step: o.value[0] for o in trial.metrics.get_history("val_loss_ci")}
        assert list(history) == [row.epoch] == [0]  # KerasTuner keeps the best epoch
        assert row.objective == history[row.epoch]
        assert row.ci == ci[row.epoch] and row.ci > 0
        assert row.status == "COMPLETED"


def test_the_best_model_reloads_with_its_validation_result(sinusoid_search):
    hypermodel, tuner = sinusoid_search
    best_row = leaderboard(tuner)[0]
    config = hypermodel.config(tuner.get_best_hyperparameters(1)[0])
    reloaded = tuner.get_best_models(1)[0]
    results = km.evaluation.evaluate_tasks(reloaded, streams.episodes(config, "validation"),
                                           SINUSOID["val_tasks"])
    assert results.summary("val")["val_loss"] == pytest.approx(best_row.objective, rel=1e-5)


def test_a_search_repeats_for_its_seed(sinusoid_search, tmp_path):
    _, first = sinusoid_search
    _, second = search(tmp_path)
    first_rows, second_rows = leaderboard(first), leaderboard(second)
    assert [row.values for row in second_rows] == [row.values for row in first_rows]
    np.testing.assert_allclose([row.objective for row in second_rows],
                               [row.objective for row in first_rows], rtol=1e-5)


def test_ties_are_the_trials_within_the_ci_of_their_difference_to_the_best():
    rows = [Row("a", "COMPLETED", {}, 0.80, 0.02, 0), Row("b", "COMPLETED", {}, 0.77, 0.02, 1),
            Row("c", "COMPLETED", {}, 0.70, 0.03, 0), Row("d", "FAILED", {}, math.nan, math.nan,
                                                          None)]

    class Tuner:  # the two attributes `leaderboard` reads
        class oracle:
            objective = kt.Objective("val_accuracy", "max")
            trials = {}

    for row in rows:
        trial = kt.engine.trial.Trial(kt.HyperParameters(), trial_id=row.trial_id,
                                      status=row.status)
        if row.epoch is not None:
            trial.metrics.register("val_accuracy", "max")
            trial.metrics.update("val_accuracy", row.objective, step=row.epoch)
            trial.metrics.update("val_accuracy_ci", row.ci, step=row.epoch)
        Tuner.oracle.trials[row.trial_id] = trial
    ranked = leaderboard(Tuner)
    # |0.77 − 0.80| = 0.03 > √(0.02² + 0.02²) ≈ 0.028: b is worse.
    assert [(r.trial_id, r.rank, r.verdict) for r in ranked] == [
        ("a", 1, "best"), ("b", 2, "worse"), ("c", 3, "worse"), ("d", None, "no result")]
    Tuner.oracle.trials["b"].metrics.update("val_accuracy_ci", 0.03, step=1)
    # √(0.02² + 0.03²) = 0.036 ≥ 0.03: b ties with the best now.
    assert leaderboard(Tuner)[1].verdict == "tie"


def test_a_diverging_trial_fails_and_the_search_goes_on(tmp_path):
    _, tuner = search(tmp_path, inner_lrs=(0.05, 1e9), default=0.05)
    rows = leaderboard(tuner)
    assert [(row.values["inner_lr"], row.status, row.verdict) for row in rows] == [
        (0.05, "COMPLETED", "best"), (1e9, "FAILED", "no result")]
    message = tuner.oracle.get_trial(rows[1].trial_id).message
    assert "Training diverged" in message and "not finite" in message


def test_hyperband_continues_trials_on_later_batches_from_their_checkpoints(tmp_path,
                                                                            monkeypatch):
    starts = []
    episodes = streams.episodes

    def recording(config, split, *args, start=0, **kwargs):
        if split == "train":
            starts.append(start)
        return episodes(config, split, *args, start=start, **kwargs)

    monkeypatch.setattr(hypermodel_module.streams, "episodes", recording)
    hypermodel = MetaHyperModel("maml", "sinusoid", **SINUSOID)
    tuner = kt.Hyperband(hypermodel, objective=hypermodel.objective, max_epochs=2, factor=2,
                         hyperband_iterations=1, seed=1, directory=str(tmp_path),
                         hyperparameters=sinusoid_inner_lr_space((1e-3, 0.01, 0.05, 0.1), 0.01),
                         tune_new_entries=False)
    tuner.search(verbose=0)
    trials = list(tuner.oracle.trials.values())
    continued = [t for t in trials if "tuner/trial_id" in t.hyperparameters.values]
    assert continued and all(t.status == "COMPLETED" for t in trials)
    for trial in continued:
        first = trial.hyperparameters.values["tuner/initial_epoch"]
        assert first > 0 and first * SINUSOID["steps_per_epoch"] in starts
        row = next(row for row in leaderboard(tuner) if row.trial_id == trial.trial_id)
        assert first <= row.epoch < trial.hyperparameters["tuner/epochs"]
        parent = tuner.oracle.get_trial(trial.hyperparameters.values["tuner/trial_id"])
        assert trial.hyperparameters.values["inner_lr"] == parent.hyperparameters["inner_lr"]


@pytest.mark.parametrize("algorithm", models.ALGORITHMS)
def test_every_algorithm_starts_from_the_command_lines_settings(algorithm):
    hp = kt.HyperParameters()
    config = MetaHyperModel(algorithm, steps_per_epoch=7).config(hp)
    expected = run_config.from_settings(algorithm=algorithm, iterations=7, log_every=7)
    assert config == expected
    searched = set(hp.values)
    assert {"learning_rate", "meta_batch_size", "filters"} <= searched
    assert ("inner_lr" in searched) == (algorithm in models.GRADIENT_BASED or
                                        algorithm == "finetune")
    assert ("distance" in searched) == (algorithm == "protonet")
    assert ("inner_steps" in searched) == (algorithm in (*models.GRADIENT_BASED, "leo",
                                                         "meta_lstm"))


@pytest.mark.slow
def test_a_protonet_search_on_omniglot_reloads_its_best_accuracy(tmp_path, omniglot_data_dir):
    hypermodel = MetaHyperModel("protonet", steps_per_epoch=3, val_tasks=20, query_shots=2,
                                data_dir=omniglot_data_dir)
    hp = kt.HyperParameters()
    hp.Fixed("filters", 8)
    hp.Fixed("meta_batch_size", 2)
    tuner = kt.RandomSearch(hypermodel, objective=hypermodel.objective, max_trials=1, seed=2,
                            directory=str(tmp_path), hyperparameters=hp)
    tuner.search(epochs=1, verbose=0)
    best = leaderboard(tuner)[0]
    assert set(best.values) == {"learning_rate", "meta_batch_size", "filters", "distance"}
    config = hypermodel.config(tuner.get_best_hyperparameters(1)[0])
    model = tuner.get_best_models(1)[0]
    assert isinstance(model, km.ProtoNet) and model.distance == best.values["distance"]
    results = km.evaluation.evaluate_tasks(model, streams.episodes(config, "validation"), 20)
    assert results.summary("val")["val_accuracy"] == pytest.approx(best.objective, abs=1e-6)


def test_bad_arguments_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="algorithm=protonet classifies"):
        MetaHyperModel("protonet", "sinusoid")
    with pytest.raises(ValueError, match="`steps_per_epoch` must be an int >= 1"):
        MetaHyperModel("maml", steps_per_epoch=0)
    with pytest.raises(ValueError, match="`val_tasks` must be an int >= 2"):
        MetaHyperModel("maml", val_tasks=1)
    with pytest.raises(TypeError, match="Unknown settings \\['inner_lrr'\\]"):
        MetaHyperModel("maml", inner_lrr=0.1)
    hypermodel = MetaHyperModel("maml", "sinusoid", **SINUSOID)
    hp = kt.HyperParameters()
    with pytest.raises(TypeError, match="reads its own episode streams.*received data, "
                                        "batch_size"):
        hypermodel.fit(hp, hypermodel.build(hp), np.zeros(3), batch_size=4)


def test_the_command_line_writes_leaderboard_plot_and_summary(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_meta.tune", "--dataset=sinusoid", "--trials=1",
         "--epochs=1", "--steps_per_epoch=3", "--val_tasks=10", "--test_tasks=10",
         f"--output_dir={tmp_path}"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "summary.json") as file:
        summary = json.load(file)
    with open(tmp_path / "leaderboard.csv") as file:
        table = list(csv.DictReader(file))
    assert len(table) == summary["trials"] == summary["completed"] == 1
    assert table[0]["rank"] == "1" and table[0]["verdict"] == "best"
    assert float(table[0]["val_loss"]) == pytest.approx(summary["best"]["val_loss"])
    assert summary["best"]["settings"] == {name: pytest.approx(float(table[0][name]))
                                           for name in summary["best"]["settings"]}
    assert summary["default"]["settings"] == {"learning_rate": 1e-3, "meta_batch_size": 25,
                                              "inner_lr": 0.01, "inner_steps": 1,
                                              "eval_inner_steps": 10}
    for entry in (summary["best"], summary["default"]):
        assert entry["test"]["test_loss"] > 0 and entry["test"]["test_loss_ci"] > 0
        assert f"test_loss {entry['test']['test_loss']:.4f}" in result.stdout
    assert (tmp_path / "leaderboard.png").stat().st_size > 10_000


def test_write_csv_has_one_column_per_hyperparameter(tmp_path):
    rows = [Row("0", "COMPLETED", {"a": 1, "b": "x"}, 0.5, 0.1, 2, 1, "best"),
            Row("1", "FAILED", {"a": 2}, math.nan, math.nan, None)]
    write_csv(rows, tmp_path / "board.csv", "val_accuracy")
    with open(tmp_path / "board.csv") as file:
        table = list(csv.reader(file))
    assert table[0] == ["rank", "verdict", "val_accuracy", "val_accuracy_ci", "epoch",
                        "trial_id", "status", "a", "b"]
    assert table[1] == ["1", "best", "0.5", "0.1", "2", "0", "COMPLETED", "1", "x"]
    assert table[2][:2] == ["", "no result"] and table[2][-2:] == ["2", ""]
