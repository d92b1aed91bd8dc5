import numpy as np
import pytest

from keras_meta import stats


def test_confidence_interval_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    values = rng.normal(3.0, 2.0, 600)
    mean, half_width = stats.mean_confidence_interval(values)
    sample_sd = np.sqrt(np.sum((values - values.mean()) ** 2) / 599)
    assert mean == pytest.approx(values.mean())
    assert half_width == pytest.approx(1.96 * sample_sd / np.sqrt(600), rel=1e-4)


def test_confidence_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(2000):
        mean, half_width = stats.mean_confidence_interval(rng.exponential(1.0, 200))
        covered += abs(mean - 1.0) <= half_width
    assert 0.92 <= covered / 2000 <= 0.97


def test_confidence_interval_needs_two_values():
    with pytest.raises(ValueError, match="`values` must hold at least 2"):
        stats.mean_confidence_interval([1.0])
