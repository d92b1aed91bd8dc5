"""A short run of the soak benchmark (`benchmarks/soak.py`): no re-tracing
after the first meta-iteration and resident memory that stays flat."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def soak_module():
    spec = importlib.util.spec_from_file_location("soak", os.path.join(ROOT, "benchmarks", "soak.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_short_soak_neither_retraces_nor_grows():
    samples = soak_module().soak(iterations=600, sample_every=150, meta_batch_size=5)
    iterations = [sample[0] for sample in samples]
    assert iterations == [1, 150, 300, 450, 600]
    traces = {sample[2] for sample in samples}
    assert len(traces) == 1 and traces.pop() >= 1
    growth = samples[-1][1] - samples[1][1]
    assert growth < 16 * 2 ** 20, f"RSS grew by {growth / 2 ** 20:.1f} MiB over 450 meta-iterations"


@pytest.mark.slow
def test_soak_of_ten_thousand_meta_iterations():
    samples = soak_module().soak(iterations=10_000, sample_every=1_000)
    assert len({sample[2] for sample in samples}) == 1
    assert samples[-1][1] - samples[1][1] < 32 * 2 ** 20
