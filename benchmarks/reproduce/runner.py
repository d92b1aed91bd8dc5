"""Runs a table's trainings with `python -m keras_meta.train`, one
subprocess per run, and keeps a small `results.json` of each.

A run whose `results.json` exists is skipped (unless `force`), so a table
can be built up over several sessions; an interrupted run resumes from the
CLI's backup in its scratch directory (models, logs, checkpoints: git-ignored).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")
SCRATCH_DIR = os.path.join(HERE, "scratch")
ROOT = os.path.dirname(os.path.dirname(HERE))
# Settings of the CLI's config that say where, not what.
_LOCAL = ("output_dir", "data_dir", "verbose")


def argument_parser(description):
    """The flags every table's script takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--force", action="store_true",
                        help="Re-run runs whose results.json exists.")
    parser.add_argument("--smoke", action="store_true",
                        help="A few iterations and test tasks each, into a temporary directory.")
    parser.add_argument("--only", default="",
                        help="Comma-separated algorithms or run names to run (default: all).")
    parser.add_argument("--results_dir", default=None,
                        help=f"Where results.json files go (default: {RESULTS_DIR}; "
                             "--smoke: a new temporary directory).")
    parser.add_argument("--scratch_dir", default=None,
                        help=f"Where the CLI writes models and logs (default: {SCRATCH_DIR}; "
                             "with another --results_dir or --smoke: <results_dir>/scratch).")
    return parser


def selected(runs, only):
    """The runs named by `only` (comma-separated algorithms or run names)."""
    if not only:
        return list(runs)
    names = [name for name in only.split(",") if name]
    known = {run.algorithm for run in runs} | {run.name for run in runs}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"--only: unknown {', '.join(unknown)} (choose from "
                         f"{', '.join(sorted(known))})")
    return [run for run in runs if run.algorithm in names or run.name in names]


def directories(args):
    """`(results_dir, scratch_dir)` of the parsed `args`."""
    results = args.results_dir or (tempfile.mkdtemp(prefix="reproduce_") if args.smoke
                                   else RESULTS_DIR)
    scratch = args.scratch_dir or (SCRATCH_DIR if results == RESULTS_DIR
                                   else os.path.join(results, "scratch"))
    return results, scratch


def result_path(results_dir, run):
    return os.path.join(results_dir, run.table, run.name, "results.json")


def run_all(runs, results_dir, scratch_dir, force=False, smoke=False):
    """Runs each of `runs` not done yet; returns the names of those that failed."""
    failed = []
    for run in runs:
        path = result_path(results_dir, run)
        if os.path.exists(path) and not force:
            print(f"{run.name}: done, skipped ({path})", flush=True)
            continue
        scratch = os.path.join(scratch_dir, run.table, run.name)
        print(f"{run.name}: running (log: {os.path.join(scratch, 'output.log')})", flush=True)
        if not run_one(run, path, scratch, force, smoke):
            failed.append(run.name)
    return failed


def run_one(run, path, scratch, force, smoke):
    """Trains and tests `run` in a subprocess; writes `path`. Returns success."""
    if force and os.path.exists(scratch):
        shutil.rmtree(scratch)
    command = [sys.executable, "-m", "keras_meta.train", *run.arguments(smoke),
               f"--output_dir={scratch}"]
    os.makedirs(scratch, exist_ok=True)
    log_path = os.path.join(scratch, "output.log")
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        returncode = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}).returncode
    wall = time.perf_counter() - start
    if returncode:
        with open(log_path, encoding="utf-8") as log:
            tail = log.read()[-2000:]
        print(f"{run.name}: FAILED (exit {returncode}); log: {log_path}\n{tail}", flush=True)
        return False
    with open(os.path.join(scratch, "results.json"), encoding="utf-8") as file:
        full = json.load(file)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(summary(run, full, wall, smoke), file, indent=2)
        file.write("\n")
    print(f"{run.name}: {wall:.0f} s; {path}", flush=True)
    return True


def summary(run, full, wall_seconds, smoke):
    """The small record kept of a run: its settings, budget, times and test
    figures (not its history). Times are those of the process that finished
    the run: `resumed` says whether an earlier one had trained part of it."""
    config = {key: value for key, value in full["config"].items() if key not in _LOCAL}
    return {
        "table": run.table, "run": run.name, "algorithm": run.algorithm,
        "setting": run.setting, "seed": run.seed, "smoke": smoke,
        "command": "python -m keras_meta.train " + " ".join(run.arguments(smoke)),
        "config": config,
        "budget": {"iterations": config["iterations"],
                   "meta_batch_size": config["meta_batch_size"]},
        "wall_seconds": wall_seconds,
        "resumed": full["train"]["iterations_this_process"] < full["train"]["iterations"],
        "train_seconds": full["train"]["seconds"],
        "seconds_per_iteration": full["train"]["seconds_per_iteration"],
        "test": full["test"],
        "test_by_shots": full.get("test_by_shots", {}),
    }


def main(runs, args, after=None):
    """Runs the selected `runs` of the parsed `args`; then `after(results_dir,
    scratch_dir)` if given. Exits non-zero if a run failed."""
    results_dir, scratch_dir = directories(args)
    failed = run_all(selected(runs, args.only), results_dir, scratch_dir, args.force, args.smoke)
    if after is not None:
        after(results_dir, scratch_dir)
    print(f"Results: {results_dir}")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")
