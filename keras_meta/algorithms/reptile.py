"""Reptile (Nichol, Achiam & Schulman, 2018)."""

import keras
import tensorflow as tf

from keras_meta import arguments, episode, keras_internals
from keras_meta.algorithms.maml import MAML

DEFAULT_INNER_LR = 0.001


@keras.saving.register_keras_serializable(package="keras_meta")
class Reptile(MAML):
    """Reptile: move the initialization towards each task's adapted weights.

    Each task adapts from θ for `inner_steps` SGD steps on its support set
    (whole, or `inner_batch_size` examples per step, cycling through it),
    giving φ_task. The outer "gradient" handed to the compiled optimizer is
    `θ − mean_tasks(φ_task)`, so `SGD(learning_rate=ε)` is the classic update
    `θ ← θ + ε (mean φ − θ)`, and Adam works too. No second-order terms are
    computed. The reported loss and metrics are those of the query set at φ.
    At evaluation Reptile adapts like MAML (`eval_inner_steps` SGD steps on
    the whole support set).

    Args:
      learner, inner_steps, eval_inner_steps, inner_clipnorm, inner_rule: as
        in `MAML` (the rule may be any, e.g. inner-loop Adam as in the paper).
      inner_lr: the inner SGD learning rate (default 0.001).
      inner_batch_size: support examples per inner step during training;
        None uses the whole support set.

    Example:

    ```python
    model = km.Reptile(km.learners.mlp(), inner_lr=0.02, inner_steps=5)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    ```
    """

    def __init__(self, learner, inner_lr=None, inner_steps=5, eval_inner_steps=None,
                 inner_batch_size=None, **kwargs):
        arguments.check_int("inner_batch_size", inner_batch_size, minimum=1, allow_none=True)
        no_gradient = "no gradient flows through Reptile's adaptation (it is first order)."
        arguments.reject("Reptile", kwargs, {
            "first_order": no_gradient, "per_task_gradients": no_gradient,
            "recompute_inner_steps": no_gradient})
        if inner_lr is None and kwargs.get("inner_rule") is None:
            inner_lr = DEFAULT_INNER_LR
        super().__init__(learner, inner_lr=inner_lr, inner_steps=inner_steps,
                         eval_inner_steps=eval_inner_steps, first_order=True, **kwargs)
        self.inner_batch_size = inner_batch_size

    def meta_gradients(self, x, y, sample_weight=None):
        with episode.assertions_as_python_errors():
            tasks = self.episode_tensors(x)
        weights, non_trainable = self.initial_weights()

        def task(task_support_x, task_support_y, task_query_x):
            adapted = self.adapt(weights, non_trainable, task_support_x, task_support_y,
                                 self.inner_steps, self.inner_batch_size)
            return [self.forward(adapted, non_trainable, task_query_x), *adapted]

        signature = [tf.TensorSpec(None, self.variable_dtype)]
        signature += [tf.TensorSpec(w.shape, w.dtype) for w in weights]
        y_pred, *adapted = self.map_tasks(task, tasks, signature)
        loss = keras_internals.compute_compiled_loss(self, x, y, y_pred, sample_weight,
                                                     training=True)
        # Summed over replicas by the optimizer, like the gradients of Keras
        # losses, and scaled as they are (the optimizer divides by its loss scale).
        share = 1.0 / tf.distribute.get_strategy().num_replicas_in_sync
        grads = [self.optimizer.scale_loss((w - tf.reduce_mean(a, axis=0)) * share)
                 for w, a in zip(weights, adapted)]
        return grads, y_pred, loss

    def get_config(self):
        config = super().get_config()
        del config["first_order"], config["per_task_gradients"], config["recompute_inner_steps"]
        return {**config, "inner_batch_size": self.inner_batch_size}
