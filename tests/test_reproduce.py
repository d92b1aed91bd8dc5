"""`benchmarks/reproduce/`: the table scripts' smoke mode end to end, the
table generator on a fixture of results files against hand-written tables,
and the per-step 95% CIs of the CLI's test summary against NumPy."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import keras_meta as km
from benchmarks.reproduce import runner, runs, sinusoid, tables
from keras_meta import evaluation
from keras_meta.cli import config as run_config
from keras_meta.cli import models, report

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "reproduce"
RECORD_KEYS = {"table", "run", "algorithm", "setting", "seed", "smoke", "command", "config",
               "budget", "wall_seconds", "resumed", "train_seconds", "seconds_per_iteration",
               "test", "test_by_shots"}


def numpy_ci(values):
    values = np.asarray(values, dtype=np.float64)
    return 1.959963984540054 * values.std(ddof=1) / np.sqrt(len(values))


def start_script(module, *flags):
    return subprocess.Popen([sys.executable, "-m", f"benchmarks.reproduce.{module}", *flags],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process):
    stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stdout[-2000:] + stderr[-3000:]
    return stdout


def read(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


@pytest.fixture(scope="module")
def smoke_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    scripts = [start_script("sinusoid", "--smoke", "--only=maml", f"--results_dir={out}"),
               start_script("omniglot", "--smoke", "--only=protonet_5w1s_seed0",
                            f"--results_dir={out}")]
    for process in scripts:
        finish(process)
    return out


@pytest.mark.slow  # trains the smoke runs: about 40 s
def test_smoke_runs_write_small_results_with_every_figure(smoke_dir):
    written = sorted(path.relative_to(smoke_dir).as_posix()
                     for path in smoke_dir.glob("*/*/results.json"))
    assert written == ["omniglot/protonet_5w1s_seed0/results.json",
                       "sinusoid/maml_k10_seed0/results.json"]
    for name in written:
        record = read(smoke_dir / name)
        assert set(record) == RECORD_KEYS and record["smoke"] is True
        assert record["resumed"] is False
        assert record["budget"]["iterations"] == runs.SMOKE["iterations"]
        assert record["test"]["tasks"] == runs.SMOKE["test_tasks"]
        assert record["command"].startswith("python -m keras_meta.train ")
        assert "history" not in record and "output_dir" not in record["config"]
        assert (smoke_dir / name).stat().st_size < 8000
    record = read(smoke_dir / "sinusoid/maml_k10_seed0/results.json")
    assert record["config"]["shots"] == 10
    assert sorted(record["test_by_shots"]) == ["20", "5"]
    for shots, test in [("10", record["test"]), *record["test_by_shots"].items()]:
        assert test["shots"] == int(shots)
        for step in runs.SINUSOID_STEPS:
            assert test[f"test_loss_step_{step}_ci"] > 0
    assert record["test"]["test_loss"] == pytest.approx(record["test"]["test_loss_step_10"],
                                                        rel=1e-5)
    accuracy = read(smoke_dir / "omniglot/protonet_5w1s_seed0/results.json")["test"]
    assert 0 <= accuracy["test_accuracy"] <= 1 and accuracy["test_accuracy_ci"] > 0
    assert (smoke_dir / "sinusoid" / "figure.png").stat().st_size > 10000
    assert (smoke_dir / "scratch" / "sinusoid" / "maml_k10_seed0" / "model.keras").exists()


@pytest.mark.slow  # trains the smoke runs: about 40 s
def test_done_runs_are_skipped(smoke_dir):
    output = finish(start_script("omniglot", "--smoke", "--only=protonet_5w1s_seed0",
                                 f"--results_dir={smoke_dir}"))
    assert "protonet_5w1s_seed0: done, skipped" in output


@pytest.mark.slow  # trains the smoke runs: about 40 s
def test_tables_of_smoke_results_show_the_runs_and_not_run(smoke_dir):
    text = tables.sinusoid_table(smoke_dir)
    test = read(smoke_dir / "sinusoid/maml_k10_seed0/results.json")["test_by_shots"]["5"]
    row = next(line for line in text.splitlines() if line.startswith("| 5 | 5 |"))
    assert row.split(" | ")[2] == (f"{test['test_loss_step_5']:.3f} ± "
                                   f"{test['test_loss_step_5_ci']:.3f}")
    assert row.split(" | ")[3] == "not run"
    figure = os.path.relpath(smoke_dir / "sinusoid" / "figure.png", runner.ROOT)
    assert text.endswith(f"K = 5 and 10]({figure})")


def test_sinusoid_table_of_the_fixture():
    expected = (FIXTURES / "expected_sinusoid.md").read_text(encoding="utf-8").strip()
    text = tables.sinusoid_table(FIXTURES / "results")
    assert text.split("\n\n", 1)[1] == expected


def test_omniglot_table_of_the_fixture():
    text = tables.omniglot_table(FIXTURES / "results")
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    for line in (FIXTURES / "expected_omniglot_rows.md").read_text(encoding="utf-8").splitlines():
        assert rows[line.split(" | ")[0]] == line
    # The header, the rule, one row per algorithm and the seed row.
    assert len(rows) == 2 + len(runs.OMNIGLOT_ALGORITHMS) + 1
    for name in ("| FOMAML", "| SNAIL", "| LEO", "| MetaLSTM", "| FineTune"):
        assert rows[name].count("not run (") == 3


def test_seed_row_is_the_numpy_mean_and_spread():
    accuracies = [read(FIXTURES / f"results/omniglot/maml_5w1s_seed{seed}/results.json")
                  ["test"]["test_accuracy"] for seed in runs.SEEDS]
    text = tables.omniglot_table(FIXTURES / "results")
    cell = f"{100 * np.mean(accuracies):.2f}% ± {100 * np.std(accuracies, ddof=1):.2f}%"
    assert f"| MAML, seeds 0, 1, 2 (mean ± s.d. across seeds) | {cell} (1,000) |" in text


def test_seed_row_with_seeds_missing(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(FIXTURES / "results", results)
    shutil.rmtree(results / "omniglot" / "maml_5w1s_seed2")
    row = tables.omniglot_table(results).splitlines()[-1]
    spread = 100 * np.std([0.6, 0.62], ddof=1)
    assert f"| 61.00% ± {spread:.2f}% (seeds 0, 1 only; 1,000) |" in row
    shutil.rmtree(results / "omniglot" / "maml_5w1s_seed1")
    assert "| 60.00% (seed 0 only; 1,000) |" in tables.omniglot_table(results).splitlines()[-1]
    shutil.rmtree(results / "omniglot" / "maml_5w1s_seed0")
    row = tables.omniglot_table(results).splitlines()[-1]
    assert "| not run (1,000) | — | — | — |" in row


def test_regenerate_replaces_only_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- reproduce:sinusoid -->\nold\n<!-- /reproduce:sinusoid -->\n"
                      "middle\n<!-- reproduce:omniglot -->\n<!-- /reproduce:omniglot -->\nend\n",
                      encoding="utf-8")
    results = FIXTURES / "results"
    tables.main([f"--results_dir={results}", f"--readme={readme}"])
    expected = (f"intro\n<!-- reproduce:sinusoid -->\n{tables.sinusoid_table(results)}\n"
                f"<!-- /reproduce:sinusoid -->\nmiddle\n<!-- reproduce:omniglot -->\n"
                f"{tables.omniglot_table(results)}\n<!-- /reproduce:omniglot -->\nend\n")
    assert readme.read_text(encoding="utf-8") == expected
    tables.main([f"--results_dir={results}", f"--readme={readme}", "--check"])
    with pytest.raises(SystemExit) as exit_info:
        tables.main([f"--results_dir={tmp_path}", f"--readme={readme}", "--check"])
    assert exit_info.value.code == 1


def test_missing_markers_name_the_marker(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- reproduce:sinusoid -->\n<!-- /reproduce:sinusoid -->\n",
                      encoding="utf-8")
    with pytest.raises(SystemExit):
        tables.main([f"--readme={readme}"])
    assert "<!-- reproduce:omniglot -->" in capsys.readouterr().err


def test_bad_arguments_are_named(capsys):
    with pytest.raises(SystemExit, match="--only: unknown nope"):
        runner.selected(runs.omniglot_runs(), "maml,nope")
    with pytest.raises(SystemExit):
        sinusoid.main(["--iterations=15"])
    assert "--iterations=15" in capsys.readouterr().err


def test_run_names_are_unique_and_maml_has_three_seeds():
    names = [run.name for run in runs.omniglot_runs() + runs.sinusoid_runs()]
    assert len(names) == len(set(names))
    assert {run.seed for run in runs.omniglot_runs()
            if (run.algorithm, run.setting) == ("maml", "5w1s")} == set(runs.SEEDS)
    assert len(runs.omniglot_runs()) == len(runs.OMNIGLOT_ALGORITHMS) * 3 + len(runs.SEEDS) - 1


def test_test_summary_has_the_numpy_ci_after_each_step():
    rng = np.random.default_rng(0)
    loss_per_step = rng.gamma(2.0, 1.0, size=(50, 4))
    results = evaluation.TaskResults(loss=loss_per_step[:, -1], loss_per_step=loss_per_step)
    config = types.SimpleNamespace(seed=0, shots=5, eval_inner_steps=3, per_step=True,
                                   classification=False)
    summary = report.test_summary(config, results)
    for step in range(4):
        assert summary[f"test_loss_step_{step}"] == pytest.approx(loss_per_step[:, step].mean())
        assert summary[f"test_loss_step_{step}_ci"] == pytest.approx(
            numpy_ci(loss_per_step[:, step]), rel=1e-12)
    assert summary["shots"] == 5


def test_scratch_directory_is_ignored_by_git():
    ignored = subprocess.run(["git", "check-ignore", "-q",
                              os.path.join(runner.SCRATCH_DIR, "sinusoid", "model.keras")],
                             cwd=ROOT)
    assert ignored.returncode == 0


def test_sinusoid_finetune_is_tested_after_each_of_its_own_fine_tuning_steps():
    config = run_config.Config(
        preset=None, dataset="sinusoid", algorithm="finetune", ways=None, shots=5, query_shots=5,
        meta_batch_size=2, inner_lr=0.02, inner_steps=None, eval_inner_steps=3, first_order=False,
        learning_rate=1e-3, iterations=2, log_every=2, seed=0, output_dir="unused",
        data_dir=None, test_tasks=2, val_tasks=0, filters=4, global_clipnorm=None, test_shots=(),
        export=False, export_raw_images=False, recompute_inner_steps=False)
    model = models.build_model(config)
    inputs, _ = next(iter(km.data.sinusoid_episodes(shots=5, query_shots=5, meta_batch_size=3)))
    expected = model.predict_on_batch(inputs)  # FineTune: 3 SGD steps on all weights
    per_step = evaluation.predictions_per_step_function(
        models.evaluation_model(config, model), 3)(inputs).numpy()
    np.testing.assert_allclose(per_step[:, 3], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(per_step[:, 0], model.learner.predict_on_batch(
        np.reshape(inputs["query_x"], (-1, 1))).reshape(3, 5, 1), rtol=1e-5, atol=1e-6)
    assert np.abs(per_step[:, 3] - per_step[:, 0]).max() > 1e-4


def test_cli_defaults_and_flags_of_the_new_algorithms():
    finetune = run_config.from_settings(algorithm="finetune")
    assert (finetune.inner_lr, finetune.eval_inner_steps) == (0.1, 100)
    assert run_config.from_settings(algorithm="finetune", dataset="sinusoid").inner_lr == 0.01
    assert run_config.from_settings(algorithm="leo", inner_steps=3).inner_steps == 3
    assert run_config.from_settings(algorithm="meta_lstm").inner_steps == 5
    assert run_config.from_settings(algorithm="protonet").distance == "squared_euclidean"
    assert run_config.from_settings(algorithm="protonet", distance="cosine").distance == "cosine"
    cosine = run_config.from_settings(algorithm="protonet", distance="cosine")
    assert models.build_model(cosine).distance == "cosine"
    assert run_config.from_settings(algorithm="maml").distance is None
    assert run_config.from_settings(dataset="sinusoid",
                                    test_shots=["5", "20"]).test_shots == (5, 20)
    for given, flag in [(dict(algorithm="finetune", inner_steps=2), "--inner_steps does not apply"),
                        (dict(algorithm="snail", inner_lr=0.1), "--inner_lr does not apply"),
                        (dict(algorithm="leo", dataset="sinusoid"), "--algorithm=leo"),
                        (dict(test_shots=["0"]), "--test_shots=0"),
                        (dict(algorithm="matching", distance="cosine"), "--distance=cosine"),
                        (dict(test_shots=["x"]), "--test_shots=x"),
                        (dict(algorithm="snail", test_shots=["5"]), "--test_shots"),
                        (dict(algorithm="reptile", recompute_inner_steps=True),
                         "--recompute_inner_steps does not apply to --algorithm=reptile"),
                        (dict(algorithm="protonet", recompute_inner_steps=True),
                         "--recompute_inner_steps does not apply")]:
        with pytest.raises(run_config.UsageError, match=flag):
            run_config.from_settings(**given)


@pytest.mark.parametrize("algorithm", models.RECOMPUTABLE)
def test_cli_recompute_flag_reaches_the_model(algorithm):
    config = run_config.from_settings(algorithm=algorithm, recompute_inner_steps=True, filters=4)
    assert models.build_model(config).recompute_inner_steps
    stored = run_config.from_settings(algorithm=algorithm, filters=4)
    assert not models.build_model(stored).recompute_inner_steps


@pytest.mark.parametrize("run", runs.sinusoid_runs() + runs.omniglot_runs(),
                         ids=lambda run: f"{run.table}-{run.name}")
def test_every_run_is_a_valid_cli_command_line(run):
    given = {name: value for name, value in run.flags.items() if name != "verbose"}
    if "test_shots" in given:
        given["test_shots"] = given["test_shots"].split(",")
    config = run_config.from_settings(**given)
    assert config.algorithm == run.algorithm in models.ALGORITHMS
    assert config.seed == run.seed and config.test_tasks == runs.TEST_TASKS
    assert config.iterations % config.log_every == 0


def test_mse_cell_counts_the_tasks_left_out_as_diverged():
    test = {"tasks": 600, "test_loss_step_5": 0.4, "test_loss_step_5_ci": 0.05,
            "test_loss_step_10": 0.3, "test_loss_step_10_ci": 0.04,
            "test_diverged_tasks_step_5": 0, "test_diverged_tasks_step_10": 3}
    assert tables.mse_cell(test, 5) == "0.400 ± 0.050"
    assert tables.mse_cell(test, 10) == "0.300 ± 0.040 (3 of 600 tasks diverged, left out)"
    assert tables.mse_cell(test, 20) == "—"


def test_readme_tables_are_generated_from_the_committed_results():
    """The README's result tables are exactly what `tables.py` makes of the
    committed results.json files (never edited by hand)."""
    with open(tables.README, encoding="utf-8") as file:
        readme = file.read()
    assert tables.regenerate(readme, runner.RESULTS_DIR) == readme, \
        "README tables out of date: run python -m benchmarks.reproduce.tables"
