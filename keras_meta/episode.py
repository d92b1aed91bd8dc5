"""The episode format every `MetaModel` consumes, and its validation.

One dataset element is a batch of `T` tasks, `(inputs, query_y)`:

- `inputs["support_x"]`: `[T, S, *feature_shape]` float support examples.
- `inputs["support_y"]`: `[T, S]` int labels in `0..ways-1` (classification)
  or `[T, S, out]` float targets (regression).
- `inputs["query_x"]`: `[T, Q, *feature_shape]` float query examples.
- `query_y`: `[T, Q]` int or `[T, Q, out]` float query targets.
- optional `inputs["support_mask"]` `[T, S]` and `inputs["query_mask"]`
  `[T, Q]` (bool, or numbers 0 / 1): which entries are real in episodes
  padded to fixed shapes (`keras_meta.masking`); without them every entry is.

Shapes are checked while the graph is built (static shapes); label ranges are
checked at run time by assertions whose message starts with `ERROR_MARKER`,
which `MetaModel` turns into a `ValueError`. Run-time checks that training
has not diverged (`checked_finite`) start with `DIVERGENCE_MARKER` and
become a `FloatingPointError`.
"""

import contextlib
import functools
import re

import tensorflow as tf

SUPPORT_X = "support_x"
SUPPORT_Y = "support_y"
QUERY_X = "query_x"
KEYS = (SUPPORT_X, SUPPORT_Y, QUERY_X)
SUPPORT_MASK = "support_mask"
QUERY_MASK = "query_mask"
MASK_KEYS = (SUPPORT_MASK, QUERY_MASK)

ERROR_MARKER = "keras_meta episode error: "
DIVERGENCE_MARKER = "keras_meta divergence: "


def _dim(shape, axis):
    return None if shape.rank is None else shape[axis]


def _check_equal(what, a, b):
    if a is not None and b is not None and a != b:
        raise ValueError(f"{what}: expected {a}, received {b}.")


def as_class_labels(labels, name):
    """Rank-2 `[T, N]` labels are class labels. Given as floats (as Keras's
    symbolic build and some NumPy pipelines produce them), they are cast to
    int32 when they are whole numbers (checked at run time: 0.5 is an error
    naming `name`, never truncated). Float targets of regression have rank
    3, `[T, N, out]`, and are unchanged. Int labels become int32 (int64 and
    the unsigned 32/64-bit types: int64, where a uint64 too large for it
    turns negative and fails the `labels >= 0` check): the types
    TensorFlow's index ops take."""
    if labels.dtype.is_integer:
        wide = labels.dtype in (tf.int64, tf.uint32, tf.uint64)
        return tf.cast(labels, tf.int64 if wide else tf.int32)
    if not (labels.dtype.is_floating and labels.shape.rank == 2):
        return labels
    whole = tf.debugging.assert_equal(
        labels, tf.round(labels),
        message=f"{ERROR_MARKER}`{name}` must hold whole-number class labels (float labels "
                "are cast to int only when they are whole numbers)")
    with tf.control_dependencies([whole]):
        return tf.cast(labels, tf.int32)


def check_keys(inputs):
    """Checks that `inputs` is a dict with the episode keys (and optionally
    the mask keys, `MASK_KEYS`)."""
    if not isinstance(inputs, dict):
        raise TypeError(
            "`inputs` must be a dict with keys "
            f"{list(KEYS)}; received {type(inputs).__name__}."
        )
    missing = [k for k in KEYS if k not in inputs]
    if missing:
        raise ValueError(
            f"Episode `inputs` is missing key(s) {missing}; expected keys "
            f"{list(KEYS)}, received {sorted(inputs)}."
        )
    unknown = sorted(set(inputs) - set(KEYS) - set(MASK_KEYS))
    if unknown:
        raise ValueError(
            f"Episode `inputs` has unknown key(s) {unknown}; expected only {list(KEYS)} "
            f"and the optional masks {list(MASK_KEYS)}."
        )


def validate_inputs(inputs):
    """Checks the structure and static shapes of an episode's `inputs`.

    Args:
      inputs: dict with `support_x` `[T, S, ...]`, `support_y` `[T, S]` or
        `[T, S, out]`, `query_x` `[T, Q, ...]`.

    Returns:
      The same dict with every value converted to a tensor.

    Raises:
      ValueError / TypeError naming the offending key and what was expected.
    """
    check_keys(inputs)
    tensors = {k: _as_tensor(inputs[k], k) for k in KEYS}
    if tensors[SUPPORT_Y].dtype.is_floating:
        tensors[SUPPORT_Y] = checked_finite_values(tensors[SUPPORT_Y], SUPPORT_Y)
    tensors[SUPPORT_Y] = as_class_labels(tensors[SUPPORT_Y], SUPPORT_Y)
    sx, sy, qx = (tensors[k] for k in KEYS)
    for key in (SUPPORT_X, QUERY_X):
        t = tensors[key]
        if not t.dtype.is_floating:
            raise TypeError(f"`{key}` must be a float tensor; received dtype {t.dtype.name}.")
        if t.shape.rank is not None and t.shape.rank < 3:
            raise ValueError(
                f"`{key}` must have shape [tasks, examples, *features] (rank >= 3); "
                f"received shape {t.shape}."
            )
    if not (sy.dtype.is_integer or sy.dtype.is_floating):
        raise TypeError(f"`support_y` must be int or float; received dtype {sy.dtype.name}.")
    if sy.shape.rank is not None and sy.shape.rank not in (2, 3) or \
            sy.dtype.is_integer and sy.shape.rank == 3:
        raise ValueError(
            "`support_y` must have shape [tasks, support] (int labels) or "
            f"[tasks, support, outputs] (float targets); received {sy.dtype.name} shape "
            f"{sy.shape}."
        )
    if qx.dtype != sx.dtype:
        raise TypeError(f"`query_x` must have the dtype of `support_x`, {sx.dtype.name}; "
                        f"received {qx.dtype.name}.")
    if sx.shape.rank is not None and qx.shape.rank is not None:
        _check_equal(
            "`query_x` feature shape must equal `support_x` feature shape",
            tuple(sx.shape[2:]), tuple(qx.shape[2:]))
    tasks = _dim(sx.shape, 0)
    for key in (SUPPORT_Y, QUERY_X):
        _check_equal(
            f"`{key}` must have as many tasks (dimension 0) as `support_x`",
            tasks, _dim(tensors[key].shape, 0))
    _check_equal(
        "`support_y` must have one label per support example (dimension 1 of `support_x`)",
        _dim(sx.shape, 1), _dim(sy.shape, 1))
    for key in (SUPPORT_X, QUERY_X):
        if 0 in tensors[key].shape[:2]:
            raise ValueError(f"`{key}` has an empty task dimension: shape {tensors[key].shape}.")
        tensors[key] = checked_finite_values(tensors[key], key)
    for key, examples in ((SUPPORT_MASK, SUPPORT_X), (QUERY_MASK, QUERY_X)):
        if key in inputs:
            tensors[key] = _checked_mask(_as_tensor(inputs[key], key), key, tensors[examples])
    return tensors


def _checked_mask(mask, name, examples):
    """`mask` `[T, N]` as bool, checked against `examples` `[T, N, ...]`:
    static shape, values 0 / 1, and at least one real entry per task."""
    if mask.shape.rank is not None and mask.shape.rank != 2:
        raise ValueError(f"`{name}` must have shape [tasks, examples] (one flag per entry of "
                         f"the episode); received shape {mask.shape}.")
    for axis in (0, 1):
        _check_equal(f"`{name}` dimension {axis} must equal that of the examples it masks",
                     _dim(examples.shape, axis), _dim(mask.shape, axis))
    if mask.dtype != tf.bool:
        if not (mask.dtype.is_integer or mask.dtype.is_floating):
            raise TypeError(f"`{name}` must be bool or 0 / 1 numbers; received dtype "
                            f"{mask.dtype.name}.")
        binary = tf.debugging.assert_equal(
            tf.reduce_all(tf.logical_or(tf.equal(mask, 0), tf.equal(mask, 1))), True,
            message=f"{ERROR_MARKER}`{name}` must hold only 0 (padding) and 1 (real entry)")
        with tf.control_dependencies([binary]):
            mask = tf.not_equal(mask, 0)
    present = tf.debugging.assert_equal(
        tf.reduce_all(tf.reduce_any(mask, axis=1)), True,
        message=f"{ERROR_MARKER}`{name}` must mark at least one real entry in every task")
    with tf.control_dependencies([present]):
        return tf.identity(mask)


def validate_targets(inputs, query_y):
    """Checks `query_y` against `inputs["query_x"]` and `support_y` (static)."""
    query_y = _as_tensor(query_y, "query_y")
    if query_y.shape.rank is not None and query_y.shape.rank not in (2, 3):
        raise ValueError(
            "`query_y` must have shape [tasks, queries] (labels) or [tasks, queries, outputs] "
            f"(targets); received shape {query_y.shape}."
        )
    if query_y.dtype.is_floating:
        query_y = checked_finite_values(query_y, "query_y")
    query_y = as_class_labels(query_y, "query_y")
    qx, sy = inputs[QUERY_X], inputs[SUPPORT_Y]
    _check_equal(
        "`query_y` must have as many tasks (dimension 0) as `query_x`",
        _dim(qx.shape, 0), _dim(query_y.shape, 0))
    _check_equal(
        "`query_y` must have one target per query example (dimension 1 of `query_x`)",
        _dim(qx.shape, 1), _dim(query_y.shape, 1))
    _check_equal("`query_y` must have the rank of `support_y`", sy.shape.rank, query_y.shape.rank)
    if sy.dtype.is_integer != query_y.dtype.is_integer:
        raise TypeError(
            "`query_y` and `support_y` must both be int labels or both be float targets; "
            f"received {query_y.dtype.name} and {sy.dtype.name}."
        )
    return query_y


def checked_labels(labels, num_classes, name):
    """`labels` (int) made to depend on a run-time check `0 <= labels < num_classes`
    (an int, or a scalar tensor: the number of classes predicted)."""
    if isinstance(num_classes, int):
        bound = f"[0, {num_classes}) for a learner with {num_classes} outputs"
    else:
        bound = "[0, ways), ways being the number of classes predicted"
    message = f"{ERROR_MARKER}`{name}` must hold labels in {bound}"
    checks = [
        tf.debugging.assert_non_negative(labels, message=message),
        tf.debugging.assert_less(labels, tf.cast(num_classes, labels.dtype), message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(labels)


def checked_finite(tensors, message, skippable=0, skip=False, value=None):
    """`tensors` (a list; None entries pass through) made to depend on a
    run-time check that all their values are finite; a failure raises
    `FloatingPointError(message)` through `assertions_as_python_errors`.
    The last `skippable` tensors (gradients) may hold non-finite values
    where the boolean tensor `skip` is True (the optimizer skips the step).
    Given an integer `value` (a scalar tensor: an inner step in a loop), the
    `{}` in `message` is replaced by its value when the check fails."""
    split = len(tensors) - skippable
    finite = tf.logical_and(_all_finite(tensors[:split]),
                            tf.logical_or(skip, _all_finite(tensors[split:])))
    return _after_check(tensors, finite, DIVERGENCE_MARKER + message, value)


def checked_finite_values(values, name):
    """Float `values` made to depend on a run-time check that they are
    finite; a failure raises a `ValueError` naming `name`."""
    return _with_finite_check([values], f"{ERROR_MARKER}`{name}` must hold finite values "
                                        "(no NaN or infinity)")[0]


def _all_finite(tensors):
    present = [t for t in tensors if t is not None]
    if not present:
        return tf.constant(True)
    return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(t)) for t in present]))


def _with_finite_check(tensors, message):
    return _after_check(tensors, _all_finite(tensors), message)


def _after_check(tensors, condition, message, value=None):
    """`tensors` (None entries pass through) made to depend on a check that
    the boolean tensor `condition` is True, failing with `message` (and
    `value`, which fills its `{}`, see `assertions_as_python_errors`)."""
    if value is None:
        check = tf.debugging.assert_equal(condition, True, message=message)
    else:  # The value travels as the assertion's data: XLA compiles no string formatting.
        check = tf.debugging.Assert(condition, [message, value])
    with tf.control_dependencies([check]):
        return [None if t is None else tf.identity(t) for t in tensors]


def _as_tensor(value, name):
    try:
        return tf.convert_to_tensor(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be a tensor or an array of numbers; received "
                        f"{type(value).__name__}: {error}") from error


@contextlib.contextmanager
def assertions_as_python_errors():
    """Turns a failed episode assertion (eager, or raised by a compiled Keras
    function) into a `ValueError` carrying its message, and a failed
    `checked_finite` into a `FloatingPointError`."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        for marker, error_type in ((ERROR_MARKER, ValueError),
                                   (DIVERGENCE_MARKER, FloatingPointError)):
            if marker in error.message:
                text = error.message[error.message.find(marker) + len(marker):]
                # Compiled assertions continue "] [Condition ..." or "] [<value>]", eager
                # ones "\nCondition ..." or "'\n<value>" (an eager `Assert` quotes its data).
                message, *rest = re.split(r"'?\] \[|'?\n", text, maxsplit=1)
                value = re.match(r"\s*(-?\d+)", rest[0] if rest else "")
                if "{}" in message and value:
                    message = message.replace("{}", value.group(1), 1)
                raise error_type(message.strip()) from error
        raise


def raising_python_errors(function):
    """Wraps a Keras train/test/predict function with `assertions_as_python_errors`."""

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        with assertions_as_python_errors():
            return function(*args, **kwargs)

    return wrapped


class RaisesPythonErrors:
    """A `keras.Model` mixin: the compiled train, test and predict functions
    raise the `ValueError`/`FloatingPointError` their checks carry (see
    `assertions_as_python_errors`) instead of TensorFlow's error."""

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        self.train_function = raising_python_errors(self.train_function)
        return self.train_function

    def make_test_function(self, force=False):
        if self.test_function is not None and not force:
            return self.test_function
        super().make_test_function(force=True)
        self.test_function = raising_python_errors(self.test_function)
        return self.test_function

    def make_predict_function(self, force=False):
        if self.predict_function is not None and not force:
            return self.predict_function
        super().make_predict_function(force=True)
        self.predict_function = raising_python_errors(self.predict_function)
        return self.predict_function
