"""Callbacks with every algorithm: `FewShotEvaluation` against NumPy
computations on the same tasks, Keras's standard callbacks (checkpoints,
early stopping, TensorBoard, CSV, NaN termination, backup and restore), task
throughput and adaptation plots."""

import csv
import glob
import os
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from tests import algorithm_zoo as zoo

Z_95 = 1.959963984540054
VAL_BATCHES, VAL_TASKS = 4, 7  # 8 tasks in the dataset, the first 7 evaluated


def numpy_mean_ci(values):
    values = np.asarray(values, dtype=np.float64)
    return values.mean(), Z_95 * np.sqrt(np.sum((values - values.mean()) ** 2)
                                         / (len(values) - 1)) / np.sqrt(len(values))


def numpy_task_losses(name, scores, labels):
    """Per-task loss from scores `[T, Q, W]`: softmax cross-entropy, or the
    relation network's squared error to one-hot labels."""
    one_hot = np.eye(scores.shape[-1])[labels]
    if name == "RelationNet":
        return np.mean((scores - one_hot) ** 2, axis=(1, 2))
    shifted = scores - scores.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.mean(np.sum(one_hot * log_softmax, axis=-1), axis=1)


def numpy_results(name, model, dataset, num_tasks):
    """Per-task accuracy and loss from `model.predict` on each batch."""
    accuracy, loss = [], []
    for inputs, query_y in dataset.as_numpy_iterator():
        scores = model.predict(inputs, verbose=0)
        accuracy.append(np.mean(np.argmax(scores, axis=-1) == query_y, axis=1))
        loss.append(numpy_task_losses(name, scores.astype(np.float64), query_y))
    return np.concatenate(accuracy)[:num_tasks], np.concatenate(loss)[:num_tasks]


def tensorboard_scalars(directory):
    """`{tag: [values in step order]}` of the event files in `directory`."""
    scalars = {}
    for path in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor))))
    return {tag: [v for _, v in sorted(values)] for tag, values in scalars.items()}


@pytest.mark.parametrize("name", zoo.params())
def test_few_shot_evaluation_with_the_standard_callbacks(name, tmp_path):
    entry = zoo.entry(name)
    model = entry.compiled()
    validation = zoo.episode_dataset(VAL_BATCHES, seed=100)
    best_path = str(tmp_path / "best.keras")
    history = model.fit(entry.training_data(3), epochs=3, steps_per_epoch=1, verbose=0, callbacks=[
        km.callbacks.FewShotEvaluation(validation, num_tasks=VAL_TASKS, prefix="val"),
        keras.callbacks.ModelCheckpoint(best_path, monitor="val_accuracy", mode="max",
                                        save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=3,
                                      restore_best_weights=True),
        keras.callbacks.TensorBoard(str(tmp_path / "logs"), write_graph=False),
        keras.callbacks.CSVLogger(str(tmp_path / "history.csv")),
        keras.callbacks.TerminateOnNaN(),
    ]).history

    # The best checkpoint is the epoch EarlyStopping restored, and reloads.
    best = int(np.argmax(history["val_accuracy"]))
    reloaded = keras.saving.load_model(best_path)
    for restored, saved in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_array_equal(restored, saved)

    # Its logged results are those of NumPy on the same tasks.
    accuracy, loss = numpy_results(name, reloaded, validation, VAL_TASKS)
    for key, values in (("val_accuracy", accuracy), ("val_loss", loss)):
        mean, half_width = numpy_mean_ci(values)
        assert history[key][best] == pytest.approx(mean, rel=1e-5, abs=1e-6)
        assert history[key + "_ci"][best] == pytest.approx(half_width, rel=1e-4, abs=1e-6)

    # CSVLogger and TensorBoard (validation run, "val_" dropped) log the same values.
    with open(tmp_path / "history.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [float(row["val_accuracy_ci"]) for row in rows] == pytest.approx(
        history["val_accuracy_ci"])
    logged = tensorboard_scalars(tmp_path / "logs" / "validation")
    assert logged["epoch_accuracy_ci"] == pytest.approx(history["val_accuracy_ci"], rel=1e-6)
    assert logged["epoch_loss"] == pytest.approx(history["val_loss"], rel=1e-6)


GRADIENT_BASED = [name for name, cls in sorted(zoo.exported_algorithms().items())
                  if issubclass(cls, km.MAML)]


@pytest.mark.parametrize("name", zoo.params(GRADIENT_BASED))
def test_per_step_results_are_those_of_that_many_inner_steps(name):
    model = zoo.entry(name).compiled()
    validation = zoo.episode_dataset(2, seed=100)
    results = km.evaluation.evaluate_tasks(model, validation, num_tasks=4)
    steps = model.eval_inner_steps
    assert results.accuracy_per_step.shape == results.loss_per_step.shape == (4, steps + 1)
    for k in range(steps + 1):
        model.eval_inner_steps = k
        accuracy, loss = numpy_results(name, model, validation, 4)
        np.testing.assert_allclose(results.accuracy_per_step[:, k], accuracy)
        np.testing.assert_allclose(results.loss_per_step[:, k], loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(results.accuracy, results.accuracy_per_step[:, -1])
    logs = results.summary("test")
    assert [logs[f"test_accuracy_step_{k}"] for k in range(steps + 1)] == pytest.approx(
        results.accuracy_per_step.mean(axis=0))


class InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt("simulated interruption")


@pytest.mark.parametrize("name", zoo.params())
def test_backup_and_restore_resumes_as_if_never_interrupted(name, tmp_path, op_determinism):
    """Two epochs of two steps: uninterrupted, and interrupted after epoch 1
    then resumed by a fresh model (other initial weights). Training streams
    start at the model's meta-iteration, which the backup restores."""
    entry = zoo.entry(name)
    steps = dict(epochs=2, steps_per_epoch=2, verbose=0)

    def fit(model, backup, *callbacks):
        return model.fit(entry.training_data(4, start=model.optimizer.iterations), **steps,
                         callbacks=[keras.callbacks.BackupAndRestore(backup), *callbacks])

    uninterrupted = entry.compiled(seed=0)
    fit(uninterrupted, str(tmp_path / "a"))
    backup = str(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        fit(entry.compiled(seed=0), backup, InterruptAfterFirstEpoch())
    resumed = entry.compiled(seed=1)
    history = fit(resumed, backup)

    assert history.epoch == [1]
    assert int(resumed.optimizer.iterations) == int(uninterrupted.optimizer.iterations) == 4
    assert len(uninterrupted.get_weights()) == len(resumed.get_weights())
    for a, b in zip(uninterrupted.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not os.path.exists(backup)  # deleted once training completed


def test_a_nan_loss_stops_training_before_any_weight_changes():
    """A MetaModel rejects non-finite episodes and checks the meta-loss and
    meta-gradient before updating, so training stops before `TerminateOnNaN`
    would see a NaN loss, and no NaN ever reaches the weights."""
    model = zoo.ENTRIES["MAML"].compiled()
    inputs, query_y = zoo.episodes()
    model.fit(inputs, query_y, epochs=1, verbose=0)
    before = [w.copy() for w in model.get_weights()]
    inputs["support_x"][:] = np.nan
    with pytest.raises((ValueError, FloatingPointError), match="support_x|inner loop diverged"):
        model.fit(inputs, query_y, epochs=3, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()])
    for b, a in zip(before, model.get_weights()):
        np.testing.assert_array_equal(b, a)


class EpochClock(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.last_batch = time.perf_counter()


def test_task_throughput_is_tasks_over_elapsed_time():
    model = zoo.ENTRIES["ProtoNet"].compiled()
    clock = EpochClock()
    history = model.fit(zoo.episode_dataset(6), epochs=2, steps_per_epoch=3, verbose=0,
                        callbacks=[clock, km.callbacks.TaskThroughput(zoo.TASKS)])
    expected = 3 * zoo.TASKS / (clock.last_batch - clock.start)
    assert history.history["tasks/s"][-1] == pytest.approx(expected, rel=0.05)


def test_few_shot_evaluation_runs_every_n_epochs_and_checks_its_arguments():
    model = zoo.ENTRIES["ProtoNet"].compiled()
    evaluation = km.callbacks.FewShotEvaluation(zoo.episode_dataset(2), num_tasks=4,
                                                every_n_epochs=2)
    history = model.fit(zoo.episode_dataset(3), epochs=3, steps_per_epoch=1, verbose=0,
                        callbacks=[evaluation])
    assert len(history.history["loss"]) == 3 and len(history.history["test_accuracy"]) == 1
    assert evaluation.results.accuracy.shape == (4,)
    with pytest.raises(ValueError, match="`num_tasks`"):
        km.callbacks.FewShotEvaluation(zoo.episode_dataset(1), num_tasks=1)
    with pytest.raises(ValueError, match="`every_n_epochs`"):
        km.callbacks.FewShotEvaluation(zoo.episode_dataset(1), every_n_epochs=0)
    with pytest.raises(ValueError, match="`num_tasks` is 600 but the dataset holds only 4"):
        km.evaluation.evaluate_tasks(model, zoo.episode_dataset(2), num_tasks=600)


def test_adaptation_plot_draws_the_model_after_each_step(tmp_path):
    """Sinusoid: the plotted curves are the predictions after 0, 1 and 3 steps."""
    model = km.MAML(km.learners.mlp(hidden=(8,)), inner_lr=0.01, eval_inner_steps=3)
    model.compile(optimizer="adam", loss="mse")
    stream = km.data.sinusoid_episodes(meta_batch_size=2, seed=4)
    plotter = km.callbacks.AdaptationPlot(stream, tmp_path / "plots")
    model.fit(stream, epochs=1, steps_per_epoch=2, verbose=0, callbacks=[plotter])
    assert plotter.paths == [str(tmp_path / "plots" / "adaptation_epoch_0001.png")]
    with open(plotter.paths[0], "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"

    inputs, query_y = next(stream.as_numpy_iterator())
    ax = plotter.plot_regression(inputs, query_y)
    curves = [line for line in ax.lines if line.get_label().startswith("after")]
    assert [line.get_label() for line in curves] == ["after 0 steps", "after 1 steps",
                                                     "after 3 steps"]
    grid = curves[0].get_xdata().reshape(1, -1, 1).astype("float32")
    task = {key: value[:1] for key, value in inputs.items()}
    for line, steps in zip(curves, (0, 1, 3)):
        model.eval_inner_steps = steps
        expected = model.predict({**task, "query_x": grid}, verbose=0)[0, :, 0]
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-5, atol=1e-6)


def test_adaptation_plot_needs_inner_steps():
    model = zoo.ENTRIES["ProtoNet"].compiled()
    with pytest.raises(ValueError, match="gradient-based model"):
        model.fit(zoo.episode_dataset(1), epochs=1, verbose=0, callbacks=[
            km.callbacks.AdaptationPlot(zoo.episode_dataset(1), "unused")])
