"""Ablation of the Omniglot minimal one-shot recipe (the
`omniglot_minimal_one_shot` preset of `python -m keras_meta.train`).

Runs the recipe once as it is and once with each ingredient removed in turn
(within-alphabet training episodes → the usual 20-way episodes; distortions
→ none), each a CLI process of its own with the same time budget and seed,
and collects their results.json into
benchmarks/results/one_shot_ablation.json. Test-time refinement changes
nothing in training, so its row is the recipe's own model evaluated on the
same trials without it. Candidate ingredients (`ADDITIONS`) run on request,
each added alone to the recipe. The recipe's flags are written out here, not
taken from `--preset`, so that one can be removed.

    python -m benchmarks.one_shot_ablation                  # three runs of --time_budget each
    python -m benchmarks.one_shot_ablation --only=cosine_schedule  # add a candidate's run
    python -m benchmarks.one_shot_ablation --table          # rewrite README.md's tables

`--table` also writes the 60-minute preset's table from its results.json,
copied to benchmarks/results/one_shot_60min.json after
`python -m keras_meta.train --preset=omniglot_minimal_one_shot_60min --curve_points=6`.
    python -m benchmarks.one_shot_ablation --table --check  # exit 1 if they are out of date
"""

import argparse
import json
import os
import subprocess
import sys

from benchmarks.reproduce import tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results", "one_shot_ablation.json")
SIXTY_MINUTES = os.path.join(ROOT, "benchmarks", "results", "one_shot_60min.json")
README = os.path.join(ROOT, "README.md")
NOT_RUN = tables.NOT_RUN
CURVE_POINTS = 10
# The preset's settings (keras_meta/cli/presets.py), as flags.
RECIPE = dict(algorithm="protonet", dataset="omniglot_minimal", ways=20, shots=1,
              query_shots=2, meta_batch_size=2, learning_rate=1e-3, iterations=1_000_000,
              train_within_alphabet=True, augment="characters", eval_refinement_steps=3,
              within_alphabet_trials=1000, val_tasks=0, export_raw_images=True)
# Each training run: (name, what it changes in the recipe, its row's label).
RUNS = (
    ("recipe", {}, "the recipe"),
    ("no_within_alphabet_training", dict(train_within_alphabet=False),
     "− within-alphabet training (usual 20-way episodes)"),
    ("no_distortions", dict(augment="none"), "− distortions (`--augment=none`)"),
)
# Candidate ingredients, each added alone to the recipe: (name, change, label).
ADDITIONS = (
    ("cosine_schedule", dict(learning_rate_schedule="cosine"),
     "+ learning rate decayed to 0 over the budget (`--learning_rate_schedule=cosine`)"),
)
# The recipe's model tested without test-time refinement: (name, label).
NO_REFINEMENT = ("no_refinement", "− test-time refinement (the recipe's model, tested without it)")


def flags(settings):
    """`{flag: value}` → command-line flags (`--name=value`, booleans as
    `--name` / `--noname`)."""
    out = []
    for name, value in settings.items():
        if isinstance(value, bool):
            out.append(f"--{name}" if value else f"--no{name}")
        else:
            out.append(f"--{name}={value}")
    return out


def run(name, changes, time_budget, seed, output_dir):
    """Trains and tests one variant in its own process; its results.json."""
    out = os.path.join(output_dir, name)
    command = [sys.executable, "-m", "keras_meta.train",
               *flags({**RECIPE, **changes, "time_budget": time_budget, "seed": seed,
                       "curve_points": CURVE_POINTS, "output_dir": out, "verbose": "0"})]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    with open(os.path.join(out, "results.json"), encoding="utf-8") as file:
        results = json.load(file)
    return {"flags": command[3:], "within_alphabet": results["within_alphabet"],
            "test": {key: results["test"][key] for key in ("test_accuracy", "test_accuracy_ci")},
            "train": {key: results["train"][key] for key in ("iterations_run",
                                                             "training_seconds")},
            "learning_curve": results["learning_curve"]}


def without_refinement(output_dir):
    """The recipe run's model (its `model.keras`, settings from its
    results.json) tested on the same trials and tasks with no refinement at
    test: `{"within_alphabet": {...}, "test": {...}}` as a run's."""
    import keras

    from keras_meta import evaluation, stats, train
    from keras_meta.cli import config as run_config
    from keras_meta.cli import streams

    recipe = os.path.join(output_dir, "recipe")
    with open(os.path.join(recipe, "results.json"), encoding="utf-8") as file:
        config = run_config.Config(**json.load(file)["config"])
    model = keras.saving.load_model(os.path.join(recipe, "model.keras"))
    model.eval_refinement_steps = 0
    accuracies = evaluation.evaluate_tasks(model, streams.episodes(config, "test"),
                                           config.test_tasks).accuracy
    accuracy, half_width = stats.mean_confidence_interval(accuracies)
    return {"within_alphabet": train.trials_error(config, model),
            "test": {"test_accuracy": float(accuracy), "test_accuracy_ci": float(half_width)}}


def percent(mean, half_width):
    return f"{100 * mean:.2f}% ± {100 * half_width:.2f}%"


def ablation_row(label, result, iterations):
    """One row of the ablation table; `result` None: not run."""
    if result is None:
        return [label, NOT_RUN, NOT_RUN, NOT_RUN]
    trials, test = result["within_alphabet"], result["test"]
    return [label, percent(trials["error"], trials["ci"]),
            percent(1 - test["test_accuracy"], test["test_accuracy_ci"]), iterations]


def ablation_table(ablation):
    """The README's ablation table from the JSON `ablation` (None: nothing run)."""
    runs = (ablation or {}).get("runs", {})
    rows = [ablation_row(label, runs.get(name), runs.get(name) and
                         f"{runs[name]['train']['iterations_run']:,}")
            for name, _, label in RUNS]
    rows += [ablation_row(label, runs.get(name), runs.get(name) and
                          f"{runs[name]['train']['iterations_run']:,}")
             for name, _, label in ADDITIONS]
    name, label = NO_REFINEMENT
    recipe = runs.get("recipe")
    rows.append(ablation_row(label, runs.get(name) if recipe else None, recipe and
                             f"{recipe['train']['iterations_run']:,} (the recipe's)"))
    iterations = "meta-iterations"
    if ablation:
        iterations += f" ({ablation['time_budget'] / 60:g} min, seed {ablation['seed']})"
    return tables.markdown(["run", "within-alphabet error, 1,000 trials",
                            "usual 20-way 1-shot error", iterations], rows)


def curve_table(ablation):
    """The README's learning-curve table of the recipe run."""
    recipe = (ablation or {}).get("runs", {}).get("recipe")
    header = ["training time", "meta-iterations", "within-alphabet error, 1,000 trials"]
    if recipe is None:
        return tables.markdown(header, [[NOT_RUN, NOT_RUN, NOT_RUN]])
    return tables.markdown(header, [
        [f"{point['seconds'] / 60:.1f} min", f"{point['iterations']:,}",
         percent(point["error"], point["ci"])] for point in recipe["learning_curve"]])


def sixty_minute_table(result):
    """The README's table of the 60-minute preset's run (its results.json):
    its learning curve, the last row being the trained model, whose usual
    20-way error is measured too."""
    header = ["training time", "meta-iterations", "within-alphabet error, 1,000 trials",
              "usual 20-way 1-shot error"]
    if result is None:
        return tables.markdown(header, [[NOT_RUN] * 4])
    rows = [[f"{point['seconds'] / 60:.1f} min", f"{point['iterations']:,}",
             percent(point["error"], point["ci"]), "—"] for point in result["learning_curve"]]
    test = result["test"]
    rows[-1][-1] = percent(1 - test["test_accuracy"], test["test_accuracy_ci"])
    return tables.markdown(header, rows)


def regenerate(text, ablation, sixty_minutes=None):
    """`text` (a README) with the tables regenerated from `ablation` and from
    the 60-minute run's results `sixty_minutes`."""
    text = tables.replace_section(text, "ablation", ablation_table(ablation), prefix="one_shot")
    text = tables.replace_section(text, "curve", curve_table(ablation), prefix="one_shot")
    return tables.replace_section(text, "sixty_minutes", sixty_minute_table(sixty_minutes),
                                  prefix="one_shot")


def load(path):
    """The stored ablation, or None if it has not run."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def write_tables(parser, args):
    """--table: rewrite the README's tables, or with --check exit 1 if stale."""
    with open(args.readme, encoding="utf-8") as file:
        text = file.read()
    try:
        new = regenerate(text, load(args.results), load(args.sixty_minute_results))
    except ValueError as error:
        parser.error(f"--readme={args.readme}: {error}")
    if args.check:
        if new != text:
            print(f"{args.readme}: one-shot tables out of date; run "
                  "python -m benchmarks.one_shot_ablation --table")
            sys.exit(1)
        return
    with open(args.readme, "w", encoding="utf-8") as file:
        file.write(new)
    print(f"{args.readme}: one-shot tables regenerated from {args.results}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time_budget", type=float, default=600,
                        help="Seconds of training of each run (the preset's 600).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of every run.")
    parser.add_argument("--output_dir", default=os.path.join(ROOT, "runs", "one_shot_ablation"),
                        help="Where each run writes (a folder per run).")
    parser.add_argument("--results", default=RESULTS, help="The collected JSON.")
    parser.add_argument("--only", type=lambda text: text.split(","),
                        help="Run only these runs (names, comma-separated; of RUNS or "
                             "ADDITIONS) and add them to --results.")
    parser.add_argument("--table", action="store_true",
                        help="Run nothing; regenerate the README's tables from --results.")
    parser.add_argument("--check", action="store_true",
                        help="With --table: write nothing; exit 1 if the tables are out of date.")
    parser.add_argument("--readme", default=README, help="The file whose tables are rewritten.")
    parser.add_argument("--sixty_minute_results", default=SIXTY_MINUTES,
                        help="The 60-minute preset run's results.json, for --table.")
    args = parser.parse_args(argv)
    if args.check and not args.table:
        parser.error("--check needs --table")
    if args.table:
        write_tables(parser, args)
        return
    if args.only:
        ablation = load(args.results)
        if ablation is None or (ablation["time_budget"], ablation["seed"]) != (
                args.time_budget, args.seed):
            parser.error(f"--only adds runs to {args.results}, which must hold runs of the "
                         f"same --time_budget={args.time_budget:g} and --seed={args.seed}")
    else:
        ablation = {"time_budget": args.time_budget, "seed": args.seed, "runs": {}}
    for name, changes, _ in RUNS + ADDITIONS:
        if name in (args.only or [name for name, _, _ in RUNS]):
            ablation["runs"][name] = run(name, changes, args.time_budget, args.seed,
                                         args.output_dir)
            save(ablation, args.results)
    if not args.only:
        ablation["runs"][NO_REFINEMENT[0]] = without_refinement(args.output_dir)
        save(ablation, args.results)
    print(f"{args.results}: {', '.join(ablation['runs'])}")


def save(ablation, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(ablation, file, indent=2)


if __name__ == "__main__":
    main()
