"""The Keras and TensorFlow internals keras_meta uses: all in one module, each
still there and doing what keras_meta relies on in the installed versions.
A failure here names the installed Keras version: update
`keras_meta/keras_internals.py` (or the bounds in `pyproject.toml`) for it."""

import pathlib
import re
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_meta import keras_internals

PACKAGE = pathlib.Path(keras_internals.__file__).parent
VERSIONS = f"Keras {keras.__version__}, TensorFlow {tf.__version__}"
# TFDS's builder protocol is public API whose method names start with "_".
TFDS_PROTOCOL = {"_info", "_split_generators", "_generate_examples"}


def keras_private_names():
    """Private attribute names of the Keras and TensorFlow objects keras_meta touches."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization(),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    objects = [model, model.layers[0], model.optimizer, keras.callbacks.Callback(),
               tf.distribute.MirroredStrategy().extended]
    names = set()
    for owner in objects:
        names |= {n for n in dir(owner) if n.startswith("_") and not n.startswith("__")}
        names |= {n for n in vars(owner) if n.startswith("_") and not n.startswith("__")}
    return names - TFDS_PROTOCOL


def test_no_module_but_the_wall_uses_a_keras_or_tensorflow_internal():
    private = keras_private_names()
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "keras_internals.py":
            continue
        source = path.read_text(encoding="utf-8")
        for match in re.finditer(r"\.(_[A-Za-z]\w*)\b", source):
            if match.group(1) in private:
                line = source.count("\n", 0, match.start()) + 1
                offences.append(f"{path.relative_to(PACKAGE)}:{line}: {match.group(1)}")
        for module in ("keras.src", "tensorflow.python", "tf.python", "tf_keras"):
            if re.search(rf"\b{re.escape(module)}\b", source):
                offences.append(f"{path.relative_to(PACKAGE)}: imports {module}")
    assert not offences, f"Keras/TF internals outside keras_internals.py ({VERSIONS}): {offences}"


def compiled_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.BatchNormalization(),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse",
                  metrics=["mae"])
    model.fit(np.ones((4, 4, 4, 3), "float32"), np.ones((4, 2), "float32"), verbose=0)
    return model


def test_the_compiled_loss_and_its_tracker():
    model = compiled_model()
    y, y_pred = np.array([[1.0, 2.0]], "float32"), np.array([[0.0, 4.0]], "float32")
    assert float(keras_internals.compiled_loss(model)(y, y_pred)) == pytest.approx(2.5), VERSIONS
    loss = keras_internals.compute_compiled_loss(model, None, y, y_pred, None, training=True)
    assert float(loss) == pytest.approx(2.5), VERSIONS
    penalty = tf.constant(0.75)
    assert float(keras_internals.aggregate_added_loss(model, penalty)) == pytest.approx(0.75)
    tracker = keras_internals.loss_tracker(model)
    assert isinstance(tracker, keras.metrics.Mean), VERSIONS
    keras_internals.set_initial_epoch(model, 3)
    assert model._initial_epoch == 3, VERSIONS
    keras_internals.set_initial_epoch(model, None)
    assert keras_internals.model_strategy(model) is None, VERSIONS


def test_the_batch_norm_internals():
    outer = keras.Sequential([keras.Input((5, 5, 3)), keras.Sequential(
        [keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization()])])
    norms = [l for l in keras_internals.sublayers(outer)
             if isinstance(l, keras.layers.BatchNormalization)]
    assert len(norms) == 1, VERSIONS  # the nested one is found
    norm = norms[0]
    assert list(keras_internals.reduction_axes(norm)) == [0, 1, 2], VERSIONS
    x = tf.constant(np.random.default_rng(0).normal(size=(6, 3, 3, 4)), tf.float32)
    mean, variance = keras_internals.keras_moments(norm, x, None)
    np.testing.assert_allclose(mean, x.numpy().mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(variance, x.numpy().var(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    keras_internals.replace_moments(norm, lambda inputs, mask: (tf.zeros([4]), tf.ones([4])))
    # Keras uses the replacement: with zero mean and unit variance the layer is the identity.
    np.testing.assert_allclose(norm(x, training=True), x, rtol=1e-3, atol=1e-3)


def test_the_optimizer_and_strategy_internals():
    variables = [keras.Variable(np.zeros(2)), keras.Variable(np.zeros(3))]
    optimizer = keras.optimizers.SGD()
    optimizer.build(variables)
    assert [keras_internals.variable_index(optimizer, v) for v in variables] == [0, 1], VERSIONS
    assert keras_internals.in_multi_worker_mode(tf.distribute.MirroredStrategy()) is False


def test_a_missing_internal_says_which_and_which_versions():
    with pytest.raises(keras_internals.KerasInternalsError) as error:
        keras_internals.compiled_loss(types.SimpleNamespace())
    message = str(error.value)
    assert "_compile_loss" in message and keras.__version__ in message
    assert tf.__version__ in message and keras_internals.WRITTEN_AGAINST in message


def test_declared_bounds_and_lowest_pair_match_the_supported_versions():
    root = PACKAGE.parent
    declared = (root / "pyproject.toml").read_text(encoding="utf-8")
    lowest = (root / ".ci" / "lowest-constraints.txt").read_text(encoding="utf-8")
    for package, (low, high) in (("keras", keras_internals.KERAS_VERSIONS),
                                 ("tensorflow", keras_internals.TENSORFLOW_VERSIONS)):
        major, minor = high.split(".")
        assert f'"{package}>={low},<{major}.{int(minor) + 1}"' in declared, package
        assert re.search(rf"^{package}=={re.escape(low)}\.0$", lowest, re.MULTILINE), package
