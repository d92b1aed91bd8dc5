"""`FewShotEvaluation`: mean ± 95% CI over many new tasks, at epoch ends."""

import keras

from keras_meta import evaluation
from keras_meta.arguments import check_int


class FewShotEvaluation(keras.callbacks.Callback):
    """Evaluates the model on `num_tasks` tasks of `dataset` every
    `every_n_epochs` epochs and adds the results to the epoch's logs, so that
    `History`, `TensorBoard`, `CSVLogger`, `ModelCheckpoint` and
    `EarlyStopping` see them (list it before those callbacks):

    - `{prefix}_loss`, `{prefix}_loss_ci`: the compiled loss of each task's
      query set, mean over tasks and 95% confidence half-width;
    - `{prefix}_accuracy`, `{prefix}_accuracy_ci`: likewise for the query
      accuracy (classification only);
    - `{prefix}_accuracy_step_{k}` / `{prefix}_loss_step_{k}`: the mean after
      `k = 0..steps` inner steps (gradient-based models), the adaptation curve.

    Args:
      dataset: episode batches `(inputs, query_y)`, e.g.
        `km.data.omniglot_episodes("test", ...)`; its first `num_tasks` tasks
        are evaluated each time (the same tasks if the dataset is seeded).
      num_tasks: tasks per evaluation (600 in the few-shot literature).
      every_n_epochs: evaluation frequency.
      prefix: name prefix of the logs; `"val"` makes them validation
        metrics for `TensorBoard` and the `val_accuracy` that
        `ModelCheckpoint(monitor="val_accuracy")` watches.
      inner_steps: inner steps of gradient-based models (default: the
        model's `eval_inner_steps`).

    Attributes:
      results: the latest `keras_meta.evaluation.TaskResults` (per-task values).

    Example:

    ```python
    model = km.MAML(km.learners.mlp(), inner_steps=1)
    model.compile(optimizer="adam", loss="mse")
    validation = km.callbacks.FewShotEvaluation(
        km.data.sinusoid_episodes(meta_batch_size=5, seed=1), num_tasks=10, prefix="val")
    history = model.fit(km.data.sinusoid_episodes(), steps_per_epoch=1, epochs=1,
                        callbacks=[validation])
    history.history["val_loss"], history.history["val_loss_ci"]
    ```
    """

    def __init__(self, dataset, num_tasks=600, every_n_epochs=1, prefix="test", inner_steps=None):
        super().__init__()
        check_int("num_tasks", num_tasks, minimum=2)
        check_int("every_n_epochs", every_n_epochs, minimum=1)
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"`prefix` must be a non-empty string; received {prefix!r}.")
        self.dataset = dataset
        self.num_tasks = num_tasks
        self.every_n_epochs = every_n_epochs
        self.prefix = prefix
        self.inner_steps = inner_steps
        self.results = None
        self._evaluator = None

    def set_model(self, model):
        super().set_model(model)
        self._evaluator = evaluation.TaskEvaluator(model, self.inner_steps)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        self.results = self._evaluator(self.dataset, self.num_tasks)
        if logs is not None:
            logs.update(self.results.summary(self.prefix))
