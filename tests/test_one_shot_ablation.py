"""benchmarks/one_shot_ablation.py: its runs are the preset's recipe with one
ingredient removed each, and its README tables hold the JSON's numbers (a
small fake ablation; the real one trains for an hour)."""

import json
import re

import pytest

from benchmarks import one_shot_ablation as ablation
from keras_meta.cli import presets

README = """# Title
<!-- one_shot:ablation -->
stale
<!-- /one_shot:ablation -->
text
<!-- one_shot:curve -->
<!-- /one_shot:curve -->
<!-- one_shot:sixty_minutes -->
<!-- /one_shot:sixty_minutes -->
"""
FAKE = {
    "time_budget": 600, "seed": 3,
    "runs": {
        "recipe": {
            "within_alphabet": {"error": 0.2534, "ci": 0.0121, "trials": 1000},
            "test": {"test_accuracy": 0.7012, "test_accuracy_ci": 0.0089},
            "train": {"iterations_run": 12345, "training_seconds": 600.2},
            "learning_curve": [
                {"seconds": 60.4, "iterations": 1200, "error": 0.5, "ci": 0.02},
                {"seconds": 600.2, "iterations": 12345, "error": 0.2534, "ci": 0.0121}]},
        "no_distortions": {
            "within_alphabet": {"error": 0.3101, "ci": 0.013, "trials": 1000},
            "test": {"test_accuracy": 0.655, "test_accuracy_ci": 0.0091},
            "train": {"iterations_run": 15000, "training_seconds": 600.1},
            "learning_curve": []},
        "no_refinement": {
            "within_alphabet": {"error": 0.2911, "ci": 0.0125, "trials": 1000},
            "test": {"test_accuracy": 0.6901, "test_accuracy_ci": 0.0092}},
    },
}


def test_runs_are_the_preset_with_one_ingredient_removed():
    preset = dict(presets.PRESETS["omniglot_minimal_one_shot"])
    assert preset.pop("time_budget") == 600
    assert ablation.RECIPE == preset
    removed = {name: changes for name, changes, _ in ablation.RUNS}
    assert removed == {"recipe": {}, "no_within_alphabet_training": {"train_within_alphabet": False},
                       "no_distortions": {"augment": "none"}}
    assert preset["eval_refinement_steps"] > 0  # the refinement row tests the recipe without it
    assert ablation.flags({"augment": "none", "export_raw_images": True,
                           "train_within_alphabet": False}) == [
        "--augment=none", "--export_raw_images", "--notrain_within_alphabet"]


def rows(text, marker):
    section = re.search(rf"<!-- one_shot:{marker} -->\n(.*?)<!-- /one_shot:{marker} -->",
                        text, re.S).group(1)
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section.strip().splitlines()[2:]]


def test_tables_hold_the_json_numbers_and_not_run(tmp_path):
    readme, results = tmp_path / "README.md", tmp_path / "ablation.json"
    readme.write_text(README, encoding="utf-8")
    results.write_text(json.dumps(FAKE), encoding="utf-8")
    sixty = tmp_path / "sixty.json"
    sixty.write_text(json.dumps({
        "within_alphabet": {"error": 0.0912, "ci": 0.0061, "trials": 1000},
        "test": {"test_accuracy": 0.9104, "test_accuracy_ci": 0.0042},
        "learning_curve": [
            {"seconds": 600.1, "iterations": 9000, "error": 0.1311, "ci": 0.0066},
            {"seconds": 3600.3, "iterations": 54000, "error": 0.0912, "ci": 0.0061}]}),
        encoding="utf-8")
    ablation.main(["--table", f"--results={results}", f"--readme={readme}",
                   f"--sixty_minute_results={sixty}"])
    text = readme.read_text(encoding="utf-8")
    assert rows(text, "sixty_minutes") == [
        ["10.0 min", "9,000", "13.11% ± 0.66%", "—"],
        ["60.0 min", "54,000", "9.12% ± 0.61%", "8.96% ± 0.42%"]]
    assert rows(text, "ablation") == [
        ["the recipe", "25.34% ± 1.21%", "29.88% ± 0.89%", "12,345"],
        [ablation.RUNS[1][2], "not run", "not run", "not run"],
        [ablation.RUNS[2][2], "31.01% ± 1.30%", "34.50% ± 0.91%", "15,000"],
        [ablation.ADDITIONS[0][2], "not run", "not run", "not run"],
        [ablation.NO_REFINEMENT[1], "29.11% ± 1.25%", "30.99% ± 0.92%", "12,345 (the recipe's)"]]
    assert "meta-iterations (10 min, seed 3)" in text and "stale" not in text
    assert rows(text, "curve") == [["1.0 min", "1,200", "50.00% ± 2.00%"],
                                   ["10.0 min", "12,345", "25.34% ± 1.21%"]]
    ablation.main(["--table", "--check", f"--results={results}", f"--readme={readme}",
                   f"--sixty_minute_results={sixty}"])

    readme.write_text(README, encoding="utf-8")
    with pytest.raises(SystemExit) as stale:
        ablation.main(["--table", "--check", f"--results={results}", f"--readme={readme}",
                       f"--sixty_minute_results={sixty}"])
    assert stale.value.code == 1
    ablation.main(["--table", f"--results={tmp_path / 'absent.json'}", f"--readme={readme}",
                   f"--sixty_minute_results={tmp_path / 'absent.json'}"])
    assert rows(readme.read_text(encoding="utf-8"), "curve") == [["not run"] * 3]
    assert rows(readme.read_text(encoding="utf-8"), "sixty_minutes") == [["not run"] * 4]


def test_only_adds_runs_to_an_ablation_of_the_same_budget_and_seed(tmp_path, monkeypatch):
    results = tmp_path / "ablation.json"
    results.write_text(json.dumps(FAKE), encoding="utf-8")
    ran = []
    monkeypatch.setattr(ablation, "run", lambda name, changes, budget, seed, out: (
        ran.append((name, changes, budget, seed)) or {"added": name}))
    ablation.main(["--only=cosine_schedule", "--time_budget=600", "--seed=3",
                   f"--results={results}", f"--output_dir={tmp_path}"])
    assert ran == [("cosine_schedule", {"learning_rate_schedule": "cosine"}, 600, 3)]
    stored = json.loads(results.read_text(encoding="utf-8"))["runs"]
    assert stored["cosine_schedule"] == {"added": "cosine_schedule"}
    assert stored["recipe"] == FAKE["runs"]["recipe"]  # the earlier runs are kept
    with pytest.raises(SystemExit):  # another seed's ablation is not mixed in
        ablation.main(["--only=cosine_schedule", "--seed=4", f"--results={results}"])
