"""`model.export`: every algorithm's SavedModel, reloaded in a fresh Python
process that imports TensorFlow only (Keras and keras_meta are made
unimportable there), serves the predictions `model.predict` gives, for task batches,
support and query sizes other than the ones the model was built with, and
for other numbers of ways where the algorithm allows them (the algorithms
outside `algorithm_zoo.REPRESENTATIVE` under `-m slow`)."""

import json
import subprocess
import sys

import numpy as np
import pytest

import keras_meta as km
from keras_meta.algorithms.embedding_model import EmbeddingModel
from tests import algorithm_zoo as zoo

REGRESSION = "MAML_sinusoid"

# The served cases: (name, episode shape). Gradient-based models and the
# baselines pre-trained on `PRETRAINING_CLASSES` keep the learner's ways.
CASES = {
    "as_built": dict(tasks=zoo.TASKS, ways=zoo.WAYS, shots=zoo.SHOTS, queries=zoo.QUERIES),
    "other_sizes": dict(tasks=5, ways=zoo.WAYS, shots=1, queries=4),
}
OTHER_WAYS = dict(tasks=3, ways=5, shots=2, queries=2)
WAYS_FROM_LABELS = ("ProtoNet", "MatchingNet", "RelationNet", "FineTune", "MultiTask")

RELOAD = r"""
import importlib, json, sys
sys.modules["keras_meta"] = sys.modules["keras"] = None  # as if neither were installed
import numpy as np
import tensorflow as tf

root, names = sys.argv[1], json.loads(sys.argv[2])
report = {}
for name in names:
    loaded = tf.saved_model.load(f"{root}/{name}/saved_model")
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    report[name] = {
        "signatures": sorted(loaded.signatures),
        "inputs": {key: [spec.dtype.name, spec.shape.as_list()] for key, spec in inputs.items()},
        "outputs": sorted(signature.structured_outputs),
    }
    cases = np.load(f"{root}/{name}/cases.npz")
    served = {}
    for case in sorted({key.split("/")[0] for key in cases.files}):
        episode = {key: tf.constant(cases[f"{case}/{key}"])
                   for key in ("support_x", "support_y", "query_x")}
        served[case] = loaded.serve(**episode).numpy()
        served[case + "/signature"] = signature(**episode)["output_0"].numpy()
        if hasattr(loaded, "embed"):
            served[case + "/embed"] = loaded.embed(episode["query_x"][0]).numpy()
    np.savez(f"{root}/{name}/served.npz", **served)
def importable(name):
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False
report["importable"] = [name for name in ("keras", "keras_meta") if importable(name)]
print(json.dumps(report))
"""


def models_and_cases(names):
    """`{name: (model, {case: inputs})}` of the algorithms `names` on image
    episodes, and of MAML on sinusoid regression episodes if `REGRESSION` is
    among them (compiled, built by `predict`)."""
    models = {}
    for entry in (entry for entry in zoo.ALL if entry.name in names):
        model = entry.compiled()
        cases = dict(CASES, other_ways=OTHER_WAYS) if entry.name in WAYS_FROM_LABELS else CASES
        models[entry.name] = model, {case: zoo.episodes(seed=len(case), **shape)[0]
                                     for case, shape in cases.items()}
    if REGRESSION not in names:
        return models
    regression = km.MAML(km.learners.mlp(hidden=(8,)), inner_lr=0.01, eval_inner_steps=2)
    regression.compile(optimizer="adam", loss="mse")
    models[REGRESSION] = regression, {
        "as_built": next(iter(km.data.sinusoid_episodes(meta_batch_size=3, seed=1)))[0],
        "other_sizes": next(iter(km.data.sinusoid_episodes(
            shots=4, query_shots=7, meta_batch_size=5, seed=2)))[0]}
    return models


# The default suite exports the representative algorithms and the regression
# model; the others are exported under `-m slow`.
DEFAULT_NAMES = (*zoo.REPRESENTATIVE, REGRESSION)


def export_and_serve(root, names):
    """Exports the models of `models_and_cases(names)` under `root` and serves
    them all from one fresh process. Returns `(root, expected predictions,
    report)`."""
    expected = {}
    for name, (model, cases) in models_and_cases(names).items():
        arrays, expected[name] = {}, {}
        for case, inputs in cases.items():
            inputs = {key: np.asarray(value) for key, value in inputs.items()}
            arrays.update({f"{case}/{key}": value for key, value in inputs.items()})
            expected[name][case] = model.predict(inputs, verbose=0)
            if isinstance(model, EmbeddingModel):
                expected[name][case + "/embed"] = model.embedding.predict(
                    inputs["query_x"][0], verbose=0)
        (root / name).mkdir()
        np.savez(root / name / "cases.npz", **arrays)
        model.export(root / name / "saved_model", verbose=False)
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, str(root), json.dumps(sorted(expected))],
        capture_output=True, text=True, timeout=600, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, expected, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def exported_by_default(tmp_path_factory):
    return export_and_serve(tmp_path_factory.mktemp("exported"), DEFAULT_NAMES)


@pytest.fixture(scope="module")
def exported_others(tmp_path_factory):
    others = [name for name in zoo.IDS if name not in DEFAULT_NAMES]
    return export_and_serve(tmp_path_factory.mktemp("exported_others"), others)


def exported(request, name):
    """`export_and_serve`'s result for the group `name` is exported with."""
    return request.getfixturevalue(
        "exported_by_default" if name in DEFAULT_NAMES else "exported_others")


EXPORTED = [*zoo.params(), REGRESSION]


def test_the_serving_process_could_import_neither_keras_nor_keras_meta(exported_by_default):
    assert exported_by_default[2]["importable"] == []


@pytest.mark.parametrize("name", EXPORTED)
def test_reloaded_savedmodel_serves_what_predict_gives(request, name):
    root, expected, _ = exported(request, name)
    served = np.load(root / name / "served.npz")
    for case, predictions in expected[name].items():
        np.testing.assert_allclose(served[case], predictions, rtol=1e-5, atol=1e-5,
                                   err_msg=f"{name}, case {case}")
        if not case.endswith("/embed"):
            np.testing.assert_array_equal(served[case + "/signature"], served[case])
    if name in WAYS_FROM_LABELS:
        assert served["other_ways"].shape[-1] == OTHER_WAYS["ways"]


@pytest.mark.parametrize("name", EXPORTED)
def test_signatures_are_named_for_tf_serving(request, name):
    report = exported(request, name)[2][name]
    cls = km.MAML if name == REGRESSION else zoo.exported_algorithms()[name]
    assert set(report["signatures"]) == {"serve", "serve_padded", "serving_default"} | (
        {"embed"} if issubclass(cls, EmbeddingModel) else set())
    features = [None, None, 1] if name == REGRESSION else [None, None, *zoo.IMAGE]
    labels = ["float32", [None, None, 1]] if name == REGRESSION else ["int32", [None, None]]
    assert report["inputs"] == {"support_x": ["float32", features], "support_y": labels,
                                "query_x": ["float32", features]}
    assert report["outputs"] == ["output_0"]


def test_export_with_preprocess_serves_raw_drawings(tmp_path):
    """`serve` of a model exported with `preprocess` takes raw uint8 drawings of
    any size and channel count and gives what `predict` gives on the
    preprocessed features."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = km.ProtoNet(km.learners.conv4_embedding(filters=8))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)

    def drawings(tasks, count, size, channels):  # black strokes on white, like the PNGs
        ink = rng.choice(np.array([0, 255], np.uint8), (tasks, count, size, size, 1), p=[.2, .8])
        return np.repeat(ink, channels, axis=-1)

    def features(raw):
        flat = raw.reshape(-1, *raw.shape[2:])
        return km.data.omniglot_preprocess(flat).numpy().reshape(*raw.shape[:2], 28, 28, 1)

    cases = [(drawings(2, 3, 105, 3), np.tile(np.arange(3, dtype=np.int32), (2, 1)),
              drawings(2, 4, 105, 3)),
             (drawings(1, 4, 60, 1), np.array([[1, 0, 3, 2]], np.int32), drawings(1, 2, 60, 1))]
    expected = [model.predict({"support_x": features(support_x), "support_y": support_y,
                               "query_x": features(query_x)}, verbose=0)
                for support_x, support_y, query_x in cases]
    model.export(tmp_path / "raw", verbose=False, preprocess=km.data.omniglot_preprocess)
    loaded = tf.saved_model.load(str(tmp_path / "raw"))
    inputs = loaded.signatures["serving_default"].structured_input_signature[1]
    assert inputs["support_x"].dtype == tf.uint8 and inputs["support_x"].shape.rank == 5
    for (support_x, support_y, query_x), predictions in zip(cases, expected):
        served = loaded.serve(support_x=support_x, support_y=support_y, query_x=query_x)
        np.testing.assert_allclose(served.numpy(), predictions, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="`preprocess` must be a function"):
        model.export(tmp_path / "bad", verbose=False, preprocess="omniglot")
    with pytest.raises(ValueError, match='`preprocess` needs format="tf_saved_model"'):
        model.export(tmp_path / "bad", format="onnx", preprocess=km.data.omniglot_preprocess)
