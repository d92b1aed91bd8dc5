"""benchmarks/time_to_accuracy.py: the clock leaves the validations out, a
run stops at the first check that reaches its target, and the table reads
the runs."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import time_to_accuracy as tta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_stopwatch_leaves_the_validations_out(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(tta.time, "perf_counter", lambda: now[0])
    watch = tta.Stopwatch(goal=0.8)

    def validate(accuracy):
        now[0] += 7.0  # a validation takes 7 s
        return accuracy

    now[0] += 2.0  # 2 s of training
    assert not watch.check(10, lambda: validate(0.5))
    now[0] += 3.0
    assert watch.check(20, lambda: validate(0.85))
    assert watch.curve == [{"iteration": 10, "seconds": 2.0, "accuracy": 0.5},
                           {"iteration": 20, "seconds": 5.0, "accuracy": 0.85}]
    assert tta.first_reached(watch.curve, 0.8) == watch.curve[1]
    assert tta.first_reached(watch.curve, 0.9) is None


def test_table_cells():
    reached = {"reached": {"iteration": 350, "seconds": 41.6, "accuracy": 0.91},
               "curve": []}
    missed = {"reached": None, "curve": [{"iteration": 5000, "seconds": 612.2,
                                          "accuracy": 0.884}]}
    assert tta.cell_text(reached) == "42 s (350 it)"
    assert tta.cell_text(missed) == "not reached (88.4% after 5,000 it, 612 s)"


def run_cell(cell, *flags):
    result = subprocess.run([sys.executable, "-m", "benchmarks.time_to_accuracy",
                             f"--cell={cell}", *flags], capture_output=True, text=True,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("implementation", ["keras_meta", pytest.param("pytorch", marks=pytest.mark.slow)])
def test_a_run_stops_at_the_first_check_that_reaches_the_target(implementation):
    if implementation == "pytorch":
        pytest.importorskip("torch")
    reached = run_cell(f"protonet:{implementation}:0", "--check_every=2", "--validation_tasks=20",
                       "--max_iterations=6", "--protonet_target=0.0")
    assert [p["iteration"] for p in reached["curve"]] == [2]
    assert reached["reached"] == reached["curve"][0]
    assert 0.2 <= reached["curve"][0]["accuracy"] <= 1.0  # 5-way: chance is 0.2
    assert reached["curve"][0]["seconds"] > 0
