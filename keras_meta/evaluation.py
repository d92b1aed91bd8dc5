"""Few-shot evaluation over many tasks: each task's query loss and accuracy,
after every inner step for gradient-based models, summarised as mean ± 95%
confidence interval (`keras_meta.stats`)."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_meta import adaptation, episode, masking, stats
from keras_meta.algorithms.maml import MAML
from keras_meta.arguments import check_int


@dataclasses.dataclass
class TaskResults:
    """Per-task results over `N` tasks.

    Attributes:
      loss: `[N]` compiled loss on each task's query set.
      accuracy: `[N]` query accuracy (classification), else None.
      loss_per_step: `[N, steps + 1]` loss after 0..steps inner steps
        (gradient-based models), else None.
      accuracy_per_step: `[N, steps + 1]` likewise, else None.

    Example:

    ```python
    results = km.evaluation.TaskResults(loss=np.array([0.5, 0.7, 0.6]),
                                        accuracy=np.array([0.8, 0.6, 1.0]))
    results.summary()
    ```
    """

    loss: np.ndarray
    accuracy: np.ndarray = None
    loss_per_step: np.ndarray = None
    accuracy_per_step: np.ndarray = None

    def finite(self, step=None):
        """`[N]` bool: tasks whose loss (after `step` inner steps; default:
        the last) is finite, i.e. whose inner loop did not diverge."""
        loss = self.loss if step is None else self.loss_per_step[:, step]
        return np.isfinite(loss)

    def summary(self, prefix="test"):
        """Logs as Keras callbacks write them: `{prefix}_accuracy` and
        `{prefix}_loss` with their 95% CI half-widths (`..._ci`), and the mean
        after each inner step `k` (`{prefix}_accuracy_step_{k}`,
        `{prefix}_loss_step_{k}`). Tasks whose loss is not finite (possible
        only with `on_divergence="record"`) are left out of every figure and
        counted in `{prefix}_diverged_tasks` (and `..._step_{k}`)."""
        logs = {}
        for name in ("accuracy", "loss"):
            values = getattr(self, name)
            if values is None:
                continue
            logs[f"{prefix}_{name}"], logs[f"{prefix}_{name}_ci"] = (
                finite_mean_confidence_interval(values, self.finite()))
            per_step = getattr(self, f"{name}_per_step")
            if per_step is not None:
                for step in range(per_step.shape[1]):
                    logs[f"{prefix}_{name}_step_{step}"] = finite_mean_confidence_interval(
                        per_step[:, step], self.finite(step))[0]
        steps = range(0 if self.loss_per_step is None else self.loss_per_step.shape[1])
        diverged = {f"{prefix}_diverged_tasks_step_{step}": int(np.sum(~self.finite(step)))
                    for step in steps}
        if not self.finite().all() or any(diverged.values()):
            logs[f"{prefix}_diverged_tasks"] = int(np.sum(~self.finite()))
            logs.update(diverged)
        return logs


def finite_mean_confidence_interval(values, finite):
    """`km.stats.mean_confidence_interval` of `values[finite]`; NaNs when
    fewer than 2 remain.

    Args:
      values: `[N]` per-task results.
      finite: `[N]` bool, which tasks count.

    Returns:
      `(mean, half_width)` as Python floats.

    Example:

    ```python
    values = np.array([0.8, np.nan, 0.6, 1.0])
    km.evaluation.finite_mean_confidence_interval(values, np.isfinite(values))
    ```
    """
    if np.sum(finite) < 2:
        return float("nan"), float("nan")
    return stats.mean_confidence_interval(np.asarray(values)[finite])


def is_gradient_based(model):
    """Whether `model` adapts by inner gradient steps: a `MAML` (of which
    every gradient-based algorithm is), with `predictions_per_step`.

    Args:
      model: a `MetaModel`.

    Returns:
      A bool.

    Example:

    ```python
    km.evaluation.is_gradient_based(km.MAML(km.learners.mlp()))  # True
    km.evaluation.is_gradient_based(km.ProtoNet(km.learners.conv4_embedding()))  # False
    ```
    """
    return isinstance(model, MAML)


def predictions_per_step_function(model, steps):
    """A compiled `inputs → [T, steps + 1, Q, ...]`: query predictions of a
    gradient-based `model` after 0..`steps` inner steps on each task.

    Args:
      model: a built gradient-based `MetaModel` (see `is_gradient_based`).
      steps: the number of inner steps.

    Returns:
      A `tf.function` of an episode dict.

    Example:

    ```python
    model = km.MAML(km.learners.mlp())
    model.compile(loss="mse")
    inputs, _ = next(iter(km.data.sinusoid_episodes(meta_batch_size=2)))
    model.predict_on_batch(inputs)  # builds the model
    predict = km.evaluation.predictions_per_step_function(model, steps=3)
    predict(inputs).shape  # (2, 4, 10, 1)
    ```
    """

    @tf.function(reduce_retracing=True)
    def predict(inputs):
        if masking.has_masks(inputs):  # padded episodes: each task on its real entries
            masks = masking.masks_of(episode.validate_inputs(inputs))
            return model.predictions_per_step(*model.episode_tensors(inputs), steps,
                                              support_mask=masks[0], query_mask=masks[1])
        return model.predictions_per_step(*model.episode_tensors(inputs), steps)

    return predict


def per_task_loss(loss, query_y, predictions, query_mask=None):
    """`loss` (as given to `compile`) of each task: `[T, Q(, out)]` targets
    and `[T, Q, ...]` predictions → `[T]`, the mean over its (real) query set.

    Args:
      loss: a Keras loss, its name, or a function `(y_true, y_pred) → [N]`.
      query_y: `[T, Q(, out)]` targets.
      predictions: `[T, Q, ...]` query predictions.
      query_mask: optional `[T, Q]` bool, False on padded queries.

    Returns:
      A `[T]` tensor.

    Example:

    ```python
    query_y = np.zeros((2, 3, 1), "float32")
    predictions = np.stack([np.zeros((3, 1)), np.ones((3, 1))]).astype("float32")
    km.evaluation.per_task_loss("mse", query_y, predictions)  # [0.0, 1.0]
    ```
    """
    loss = keras.losses.get(loss) if isinstance(loss, str) else loss
    per_example = loss.call(query_y, predictions) if isinstance(loss, keras.losses.Loss) \
        else loss(query_y, predictions)
    per_example = tf.reshape(per_example, [tf.shape(per_example)[0], -1])
    return _masked_mean(per_example, query_mask)


def _masked_mean(values, mask):
    """`[T, Q]` → `[T]`: the mean over each row's entries where `mask` is True."""
    if mask is None:
        return tf.reduce_mean(values, axis=1)
    mask = tf.cast(mask, values.dtype)
    return tf.reduce_sum(tf.where(mask > 0, values, 0), axis=1) / tf.reduce_sum(mask, axis=1)


def per_task_accuracy(query_y, predictions, query_mask=None):
    """`[T, Q]` int labels and `[T, Q, ways]` scores → `[T]` accuracy.

    Args:
      query_y: `[T, Q]` int labels.
      predictions: `[T, Q, ways]` scores (logits or probabilities).
      query_mask: optional `[T, Q]` bool, False on padded queries.

    Returns:
      A `[T]` float32 tensor, the fraction of each task's queries whose
      highest score is their label.

    Example:

    ```python
    query_y = np.array([[0, 1], [1, 1]])
    scores = np.array([[[2.0, 0.0], [0.0, 3.0]], [[1.0, 0.0], [0.0, 1.0]]])
    km.evaluation.per_task_accuracy(query_y, scores)  # [1.0, 0.5]
    ```
    """
    hits = tf.equal(tf.argmax(predictions, axis=-1, output_type=query_y.dtype), query_y)
    return _masked_mean(tf.cast(hits, tf.float64), query_mask)


class TaskEvaluator:
    """Evaluates a compiled `model` task by task (compiled functions are
    built once per inner-step count and reused across calls).

    Args:
      model: a compiled `MetaModel`.
      inner_steps: inner steps of gradient-based models; None reads
        `model.eval_inner_steps` at each call.
      on_divergence: "raise" (a diverging inner loop raises the
        `FloatingPointError` of the inner loop) or "record"
        (its task's results are non-finite, and `TaskResults.summary` counts
        it apart): for reports that must not lose the other tasks.

    Example:

    ```python
    model = km.MAML(km.learners.mlp(), inner_steps=1)
    model.compile(loss="mse")
    evaluator = km.evaluation.TaskEvaluator(model, inner_steps=2)
    test = km.data.sinusoid_episodes(meta_batch_size=5, seed=1)
    results = evaluator(test, num_tasks=10)
    results.loss_per_step.shape  # (10, 3)
    ```
    """

    def __init__(self, model, inner_steps=None, on_divergence="raise"):
        if inner_steps is not None:
            check_int("inner_steps", inner_steps, minimum=0)
        if on_divergence not in ("raise", "record"):
            raise ValueError(f'`on_divergence` must be "raise" or "record"; '
                             f"received {on_divergence!r}.")
        self.model = model
        self.inner_steps = inner_steps
        self.on_divergence = on_divergence
        self._functions = {}

    def _function(self):
        """The compiled `(inputs, query_y) → (loss, accuracy)` per task and step,
        `[T, K]` each (K = steps + 1, or 1 for models without inner steps)."""
        steps = None
        if is_gradient_based(self.model):
            steps = self.model.eval_inner_steps if self.inner_steps is None else self.inner_steps
        if steps not in self._functions:
            self._functions[steps] = self._build(steps)
        return self._functions[steps]

    def _build(self, steps):
        model = self.model
        if model.loss is None:
            raise ValueError(f"{type(model).__name__} must be compiled with a `loss` to be evaluated.")
        per_step = None if steps is None else predictions_per_step_function(model, steps)

        @tf.function(reduce_retracing=True)
        def evaluate(inputs, query_y):
            if per_step is None:
                predictions = model(inputs, training=False)[:, None]
            else:
                predictions = per_step(inputs)
            query_y = tf.convert_to_tensor(query_y)
            mask = masking.masks_of(episode.validate_inputs(inputs))[1] \
                if masking.has_masks(inputs) else None
            results = [(per_task_loss(model.loss, query_y, predictions[:, k], mask),
                        per_task_accuracy(query_y, predictions[:, k], mask)
                        if query_y.dtype.is_integer else None)
                       for k in range(predictions.shape[1])]
            losses = tf.stack([loss for loss, _ in results], axis=1)
            if not query_y.dtype.is_integer:
                return losses, None
            return losses, tf.stack([accuracy for _, accuracy in results], axis=1)

        return evaluate

    def __call__(self, dataset, num_tasks=600):
        """Results on the first `num_tasks` tasks of `dataset` (an iterable of
        `(inputs, query_y)` episode batches) → `TaskResults`."""
        check_int("num_tasks", num_tasks, minimum=2)
        evaluate = self._function()
        losses, accuracies, seen = [], [], 0
        for inputs, query_y in dataset:
            with episode.assertions_as_python_errors(), \
                    adaptation.divergence_checks(self.on_divergence == "raise"):
                loss, accuracy = evaluate(inputs, query_y)
            losses.append(loss.numpy())
            accuracies.append(None if accuracy is None else accuracy.numpy())
            seen += len(losses[-1])
            if seen >= num_tasks:
                break
        if seen < num_tasks:
            raise ValueError(f"`num_tasks` is {num_tasks} but the dataset holds only {seen} tasks.")
        loss = np.concatenate(losses)[:num_tasks]
        accuracy = None if accuracies[0] is None else np.concatenate(accuracies)[:num_tasks]
        with_steps = is_gradient_based(self.model)
        return TaskResults(
            loss=loss[:, -1],
            accuracy=None if accuracy is None else accuracy[:, -1],
            loss_per_step=loss if with_steps else None,
            accuracy_per_step=accuracy if with_steps and accuracy is not None else None,
        )


def evaluate_tasks(model, dataset, num_tasks=600, inner_steps=None, on_divergence="raise"):
    """Evaluates `model` on the first `num_tasks` tasks of `dataset`.

    Args:
      model: a compiled `MetaModel`.
      dataset: a dataset of `(inputs, query_y)` episode batches.
      num_tasks: how many tasks to evaluate (the few-shot literature's 600).
      inner_steps: inner steps of gradient-based models; None: the model's
        `eval_inner_steps`.
      on_divergence: "raise" or "record", as for `TaskEvaluator`.

    Returns:
      `TaskResults`.

    Example:

    ```python
    model = km.MAML(km.learners.mlp(), inner_steps=1)
    model.compile(loss="mse")
    test = km.data.sinusoid_episodes(meta_batch_size=5, seed=1)
    results = km.evaluation.evaluate_tasks(model, test, num_tasks=10)
    mean, half_width = km.stats.mean_confidence_interval(results.loss)
    ```
    """
    return TaskEvaluator(model, inner_steps, on_divergence)(dataset, num_tasks)
