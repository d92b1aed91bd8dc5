"""Argument checks shared by the episode pipelines; each raises a `ValueError`
naming the argument."""


def check_int(name, value, minimum=None):
    """Raises unless `value` is an int (not a bool), at least `minimum` if given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` must be an int; received {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; received {value!r}.")


def check_image_size(image_size):
    """`image_size` (None, an int, or a `(height, width)` pair) as None or a pair."""
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
        raise ValueError(
            f"`image_size` must be None, an int >= 1 or a (height, width) pair of them; "
            f"received {image_size!r}."
        )
    return pair
