"""Summary statistics for few-shot results."""

import numpy as np

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


def mean_confidence_interval(values):
    """Mean and 95% confidence half-width of per-task results.

    Uses the normal approximation `1.96 · s / √n` (s: sample standard
    deviation), the convention of the few-shot literature, whose results are
    averaged over hundreds of tasks.

    Args:
      values: 1-D array of per-task results (accuracy, loss, MSE), n ≥ 2.

    Returns:
      `(mean, half_width)` as Python floats.

    Example:

    ```python
    mean, half_width = km.stats.mean_confidence_interval([0.8, 0.6, 1.0, 0.8])
    print(f"{100 * mean:.1f} ± {100 * half_width:.1f}%")  # 80.0 ± 16.0%
    ```
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size < 2:
        raise ValueError(f"`values` must hold at least 2 per-task results; received {values.size}.")
    return float(values.mean()), float(Z_95 * values.std(ddof=1) / np.sqrt(values.size))
