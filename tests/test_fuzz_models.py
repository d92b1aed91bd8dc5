"""Bad-input fuzzing with hypothesis.

Every `MetaModel` (the algorithm zoo) gets malformed episodes — missing or
unknown keys, wrong dtypes, ranks and sizes, empty tasks, labels out of
range, non-finite values — through `call`, `train_on_batch`,
`test_on_batch` and `predict_on_batch`. A malformed episode must raise a
`ValueError` or `TypeError` whose message names the argument; one that is
valid after all must give finite predictions `[T, Q, ...]`. Nothing else
(no TensorFlow error from deep inside a graph, no NaN) is accepted.

The episode samplers get random arguments the same way. Models run eagerly
(`run_eagerly=True`), the path the compiled functions share with it, so
that thousands of distinct shapes cost no retracing; the compiled paths are
covered by `test_bad_input.py`.
"""

import re

import hypothesis
import hypothesis.strategies as st
import keras
import numpy as np
import pytest
from tests import algorithm_zoo as zoo

KEYS = ("support_x", "support_y", "query_x")
DTYPES = ("float16", "float64", "int32", "int64", "uint8", "bool", "complex64", "str")
METHODS = ("call", "train_on_batch", "test_on_batch", "predict_on_batch")

_models = {}


def model_for(entry):
    """A built, compiled (eager) instance of `entry`'s algorithm, made once."""
    if entry.name not in _models:
        model = entry.build()
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss=entry.loss(model),
                      run_eagerly=True)
        model(zoo.episodes()[0])
        _models[entry.name] = model
    return _models[entry.name]


class Case:
    """One fuzzed episode: `inputs`, `query_y`, its `defect` and what was done."""

    def __init__(self, inputs, query_y, defect, what):
        self.inputs, self.query_y, self.defect, self.what = inputs, query_y, defect, what

    def __repr__(self):
        def describe(value):
            if isinstance(value, np.ndarray):
                return f"{value.dtype}{list(value.shape)}"
            if isinstance(value, dict):
                return "{" + ", ".join(f"{k}: {describe(v)}" for k, v in value.items()) + "}"
            return type(value).__name__
        return f"Case({self.what}; inputs={describe(self.inputs)}, query_y={describe(self.query_y)})"


@st.composite
def fuzzed_episodes(draw):
    """A `Case` from `malformed_episode`, described."""
    kind = draw(st.sampled_from(KINDS))
    inputs, query_y, defect, detail = draw(malformed_episode(kind))
    return Case(inputs, query_y, defect, f"{kind} {detail}")


KINDS = ("missing", "unknown", "not_a_dict", "dtype", "rank", "size", "label", "non_finite",
         "empty", "none")


@st.composite
def malformed_episode(draw, kind):
    """`(inputs, query_y, defect, detail)`: a random episode with at most one defect.

    `defect` is None (a valid episode), or `(names, verdict)`: the argument
    names an error about it may mention, and "invalid", "maybe" (another
    float width, another int width: valid or rejected) or "targets" (a
    defect only training and evaluation can see, in `query_y` or against it).
    """
    inputs, query_y = zoo.episodes(tasks=draw(st.integers(1, 3)), seed=draw(st.integers(0, 99)))
    episode = {**inputs, "query_y": query_y}
    key = draw(st.sampled_from(sorted(episode)))
    verdict = "targets" if key == "query_y" else "invalid"
    if kind == "none":
        return inputs, query_y, None, ""
    if kind == "missing":
        key = draw(st.sampled_from(KEYS))
        del inputs[key]
        return inputs, query_y, ({key}, "invalid"), key
    if kind == "unknown":
        key = draw(st.sampled_from(["support_labels", "query_y", "x"]))
        return {**inputs, key: inputs["support_y"]}, query_y, ({key}, "invalid"), key
    if kind == "not_a_dict":
        bad = draw(st.sampled_from([list(inputs.values()), inputs["support_x"], None, "support_x"]))
        return bad, query_y, ({"inputs"}, "invalid"), type(bad).__name__
    if kind == "dtype":
        episode[key] = episode[key].astype(draw(st.sampled_from(DTYPES)))
        kind_of = episode[key].dtype.kind
        if kind_of in "fiu" and key.endswith("_y") or kind_of == "f" and key.endswith("_x"):
            verdict = "maybe"  # other int or float widths; whole-number float labels
    elif kind == "rank":
        value = episode[key]
        if draw(st.booleans()):
            episode[key] = np.take(value, 0, axis=draw(st.integers(0, value.ndim - 1)))
        else:
            episode[key] = np.expand_dims(value, draw(st.integers(0, value.ndim)))
    elif kind == "size":
        value = episode[key]
        axis = draw(st.integers(0, value.ndim - 1))
        size = draw(st.integers(1, value.shape[axis] + 2).filter(lambda n: n != value.shape[axis]))
        reps = [1] * value.ndim
        reps[axis] = size
        episode[key] = np.tile(np.take(value, [0], axis=axis), reps)
        if key == "query_x" and axis == 1:
            verdict = "targets"  # any number of queries is valid without targets
    elif kind == "label":
        key = draw(st.sampled_from(["support_y", "query_y"]))
        verdict = "targets" if key == "query_y" else "invalid"
        task = draw(st.integers(0, episode[key].shape[0] - 1))
        episode[key][task, 0] = draw(st.sampled_from([-1, -2 ** 31, 10, 2 ** 31 - 1]))
    elif kind == "non_finite":
        key = draw(st.sampled_from(["support_x", "query_x"]))
        verdict = "invalid"
        flat = episode[key].reshape(-1)
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif kind == "empty":
        part = draw(st.sampled_from(["tasks", "support", "query"]))
        key = "support_x" if part == "tasks" else f"{part}_x"
        verdict = "invalid"
        for name, value in episode.items():
            if part == "tasks":
                episode[name] = value[:0]
            elif name.startswith(part):
                episode[name] = value[:, :0]
    query_y = episode.pop("query_y")
    return episode, query_y, ({key}, verdict), key


def run(model, method, inputs, query_y):
    """Calls `model` the way `method` names; returns its predictions (or None)."""
    if method == "call":
        return model(inputs)
    if method == "predict_on_batch":
        return model.predict_on_batch(inputs)
    getattr(model, method)(inputs, query_y)
    return None


def check(model, method, inputs, query_y, defect):
    """Runs `method`; asserts a named ValueError / TypeError for a defect it can
    see, finite predictions of the right shape otherwise."""
    uses_targets = method in ("train_on_batch", "test_on_batch")
    if defect is not None and defect[1] == "targets" and not uses_targets:
        defect = None
    try:
        predictions = run(model, method, inputs, query_y)
    except (ValueError, TypeError) as error:
        message = str(error)
        assert defect is not None, f"{method} rejected a valid episode: {message}"
        assert any(re.search(rf"\b{name}\b", message) for name in defect[0]), \
            f"{type(error).__name__} does not name {sorted(defect[0])}: {message}"
        return
    assert defect is None or defect[1] == "maybe", \
        f"{method} accepted an episode with a defect in {sorted(defect[0])}"
    if predictions is not None:
        predictions = np.asarray(predictions)
        assert predictions.shape[:2] == np.shape(inputs["query_x"])[:2]
        assert np.all(np.isfinite(predictions)), f"{method} predicted non-finite values"


def fuzz_model(entry, examples, derandomize):
    """Runs `examples` fuzzed episodes through `entry`'s model; returns how many ran."""
    model = model_for(entry)
    # Models pre-trained on labelled batches (FineTune) take episodes only to predict.
    methods = METHODS if entry.data == "episodes" else [m for m in METHODS if "train" not in m]
    cases = []

    @hypothesis.settings(max_examples=examples, deadline=None, derandomize=derandomize,
                         database=None, suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=fuzzed_episodes(), method=st.sampled_from(methods))
    def fuzz(case, method):
        cases.append(case)
        check(model, method, case.inputs, case.query_y, case.defect)

    fuzz()
    return len(cases)


@pytest.mark.parametrize("entry", zoo.ALL, ids=zoo.IDS)
def test_malformed_episodes(entry):
    assert fuzz_model(entry, examples=12, derandomize=True) >= 12


@pytest.mark.slow
@pytest.mark.parametrize("entry", zoo.ALL, ids=zoo.IDS)
def test_malformed_episodes_at_length(entry):
    cases = fuzz_model(entry, examples=500, derandomize=False)
    print(f"{entry.name}: {cases} fuzzed episodes")
    assert cases >= 500
