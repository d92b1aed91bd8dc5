"""Argument checks shared by the episode pipelines; each raises a `ValueError`
naming the argument."""


import math
import numbers

import numpy as np

INT64 = (-2 ** 63, 2 ** 63 - 1)
SIZE_LIMIT = 2 ** 31 - 1  # tensor dimensions are int32 in places


def check_int(name, value, minimum=None, maximum=INT64[1]):
    """Raises unless `value` is an int (not a bool) in `[minimum, maximum]`
    (by default within int64, as the samplers' seeds and counters are)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an int; received {value!r}.")
    minimum = INT64[0] if minimum is None else minimum
    if value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; received {value!r}.")
    if value > maximum:
        raise ValueError(f"`{name}` must be an int <= {maximum}; received {value!r}.")


def check_size(name, value):
    """Raises unless `value` is an int in `[1, SIZE_LIMIT]` (a count of tasks, classes, examples)."""
    check_int(name, value, minimum=1, maximum=SIZE_LIMIT)


def check_range(name, value):
    """Raises unless `value` is a `(low, high)` pair of real numbers with
    `low <= high` whose width is finite in float32."""
    try:
        low, high = value
    except (TypeError, ValueError):
        low = high = None
    real = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (low, high))
    with np.errstate(over="ignore"):
        width = np.float32(high) - np.float32(low) if real else math.nan
    if not (real and np.isfinite(width) and low <= high):
        raise ValueError(f"`{name}` must be a (low, high) pair of numbers, low <= high, finite "
                         f"in float32; received {value!r}.")


def check_image_size(image_size):
    """`image_size` (None, an int, or a `(height, width)` pair) as None or a pair."""
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, int) else image_size
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= SIZE_LIMIT for v in pair):
        raise ValueError(
            f"`image_size` must be None, an int >= 1 or a (height, width) pair of them; "
            f"received {image_size!r}."
        )
    return tuple(pair)
