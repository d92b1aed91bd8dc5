"""Argument checks of every public constructor and function: each raises a
`ValueError` (a bad value) or `TypeError` (an argument that does not
belong) naming the argument and what was expected."""


import math
import numbers

import numpy as np

INT64 = (-2 ** 63, 2 ** 63 - 1)
SIZE_LIMIT = 2 ** 31 - 1  # tensor dimensions are int32 in places


def check_int(name, value, minimum=None, maximum=INT64[1], allow_none=False):
    """Raises unless `value` is an int (not a bool) in `[minimum, maximum]`
    (by default within int64, as the samplers' seeds and counters are), or
    None when `allow_none`."""
    if value is None and allow_none:
        return
    expected = "an int" if minimum is None else f"an int >= {minimum}"
    if allow_none:
        expected = f"None or {expected}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be {expected}; received {value!r}.")
    minimum = INT64[0] if minimum is None else minimum
    if value < minimum:
        raise ValueError(f"`{name}` must be {expected}; received {value!r}.")
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


def check_bool(name, value):
    """Raises unless `value` is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False; received {value!r}.")


def check_finite_number(name, value, minimum=None, above=None, allow_none=False):
    """Raises unless `value` is a finite real number (not a bool), `>= minimum`
    and `> above` where given, or None when `allow_none`."""
    if value is None and allow_none:
        return
    expected = "None or a finite number" if allow_none else "a finite number"
    if minimum is not None:
        expected += f" >= {minimum}"
    if above is not None:
        expected += f" > {above}"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and ((minimum is not None and value < minimum) or (above is not None and value <= above)):
        ok = False
    if not ok:
        raise ValueError(f"`{name}` must be {expected}; received {value!r}.")


def reject(owner, received, instead):
    """Raises a `TypeError` if `received` (a constructor's `**kwargs`) holds an
    argument of `instead`, a dict `{argument: what to use instead}` of the
    arguments `owner` (a class name) does not use."""
    for name in received:
        if name in instead:
            raise TypeError(f"{owner} does not take `{name}`: {instead[name]}")
