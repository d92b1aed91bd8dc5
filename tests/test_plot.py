"""`km.plot`: what is drawn is the data given, checked on the axes' artists."""

import keras
import numpy as np
import pytest

import keras_meta as km
from tests.test_callbacks import numpy_mean_ci


def test_history_and_its_csv_log_give_the_same_curves(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    history = model.fit(x, x[:, :1], epochs=3, verbose=0, validation_data=(x, x[:, :1]),
                        callbacks=[keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))])
    from_csv = km.plot.read_history(tmp_path / "log.csv")
    assert set(from_csv) == set(history.history)
    for key, values in history.history.items():
        assert from_csv[key] == pytest.approx(values)

    ax = km.plot.learning_curves(tmp_path / "log.csv", metrics=["loss", "val_loss"],
                                 steps_per_epoch=10)
    lines = {line.get_label(): line for line in ax.lines}
    np.testing.assert_array_equal(lines["val_loss"].get_xdata(), [10, 20, 30])
    np.testing.assert_allclose(lines["val_loss"].get_ydata(), history.history["val_loss"])
    assert ax.get_xlabel() == "meta-iterations"


def test_learning_curves_band_is_the_confidence_interval_and_skips_missing_epochs():
    logs = {"loss": [3.0, 2.0, 1.0], "test_accuracy": [float("nan"), 0.5, 0.7],
            "test_accuracy_ci": [float("nan"), 0.1, 0.05], "test_accuracy_step_0": [0.2] * 3}
    assert km.plot.default_metrics(logs) == ["test_accuracy"]
    ax = km.plot.learning_curves(logs)
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_xdata(), [2, 3])
    (band,) = ax.collections
    vertices = band.get_paths()[0].vertices
    assert vertices[:, 1].min() == pytest.approx(0.4) and vertices[:, 1].max() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="`metrics` \\['val_loss'\\] are not in the history"):
        km.plot.learning_curves(logs, metrics=["val_loss"])


def test_by_inner_step_draws_mean_and_ci_of_each_step(tmp_path):
    per_step = np.random.default_rng(1).uniform(size=(50, 4))
    ax = km.plot.by_inner_step(per_step, label="MAML")
    data_line, _, (bars,) = ax.containers[0].lines
    expected = [numpy_mean_ci(per_step[:, k]) for k in range(4)]
    np.testing.assert_allclose(data_line.get_ydata(), [mean for mean, _ in expected])
    np.testing.assert_allclose([top - bottom for (_, bottom), (_, top) in bars.get_segments()],
                               [2 * half for _, half in expected])
    assert ax.get_legend().get_texts()[0].get_text() == "MAML"
    km.plot.save(ax, tmp_path / "figures" / "steps.png")
    assert (tmp_path / "figures" / "steps.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="`per_step` must have shape"):
        km.plot.by_inner_step(per_step[:1])


def test_regression_fit_checks_the_prediction_shape():
    with pytest.raises(ValueError, match="`predictions_per_step` must have shape"):
        km.plot.regression_fit(np.zeros((3, 1)), np.zeros((3, 1)), np.zeros((5, 1)),
                               np.zeros((2, 4, 1)))
