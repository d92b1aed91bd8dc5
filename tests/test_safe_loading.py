"""Safe loading. Every algorithm's `.keras` file holds a config, metadata and
weights only (no lambda, no pickled function) and loads with
`safe_mode=True` into a model that predicts the same. A SavedModel export
holds no op that calls back into Python, so loading and serving it executes
no Python code of ours (`test_export.py` reloads every algorithm's export
where neither Keras nor keras_meta can be imported). The packaged Omniglot
archives' checksums and path-traversal checks are tested in
`test_omniglot_minimal.py`."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest
from tensorflow.core.protobuf import saved_model_pb2

from tests import algorithm_zoo as zoo

KERAS_ARCHIVE_FILES = {"config.json", "metadata.json", "model.weights.h5"}
PYTHON_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


@pytest.mark.parametrize("entry", zoo.ALL, ids=zoo.IDS)
def test_keras_file_holds_no_code_and_loads_in_safe_mode(entry, tmp_path):
    model = entry.compiled()
    inputs = zoo.episodes()[0]
    expected = model.predict(inputs, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert set(archive.namelist()) == KERAS_ARCHIVE_FILES
        config = archive.read("config.json").decode()
    json.loads(config)
    assert "__lambda__" not in config and '"Lambda"' not in config

    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), expected, rtol=1e-6, atol=1e-6)


def saved_model_ops(directory):
    """Every op type in the SavedModel at `directory`, functions included."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(directory, "saved_model.pb"), "rb") as file:
        proto.ParseFromString(file.read())
    ops = set()
    for meta_graph in proto.meta_graphs:
        ops |= {node.op for node in meta_graph.graph_def.node}
        for function in meta_graph.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
    return ops


@pytest.mark.parametrize("name", ["MAML", "MatchingNet"])
def test_saved_model_holds_no_python_callbacks(name, tmp_path):
    entry = zoo.ENTRIES[name]
    model = entry.compiled()
    model.predict(zoo.episodes()[0], verbose=0)
    model.export(tmp_path / "exported", verbose=False)
    ops = saved_model_ops(tmp_path / "exported")
    assert "Conv2D" in ops  # the scan reaches the functions that hold the model
    assert not ops & PYTHON_OPS
    assert sorted(os.listdir(tmp_path / "exported")) == ["assets", "fingerprint.pb",
                                                         "saved_model.pb", "variables"]
    assert os.listdir(tmp_path / "exported" / "assets") == []
