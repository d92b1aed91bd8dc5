"""Model-Agnostic Meta-Learning (Finn et al., 2017) and its first-order variant.

`MAML` is also the base of every gradient-based algorithm: a subclass
overrides only what differs (the update rule, which weights adapt, the outer
objective) and inherits the inner loop of `keras_meta.adaptation`.
"""

import math

import keras
import tensorflow as tf

from keras_meta import adaptation
from keras_meta.meta_model import MetaModel


def _check_steps(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be an int >= 0; received {value!r}.")


def _check_learning_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number; received {value!r}.")


@keras.saving.register_keras_serializable(package="keras_meta")
class MAML(MetaModel):
    """MAML: learns an initialization from which a few gradient steps on a
    task's support set fit that task.

    For each task, starting from the learner's weights θ, `inner_steps` steps
    of SGD on the support set give φ = θ − α∇L_support(...); the meta-loss is
    the query loss at φ. With `first_order=False` the meta-gradient is exact
    (it differentiates through the inner gradients, second order); with
    `first_order=True` the inner gradients are constants (FOMAML).

    Args:
      learner: a Keras model mapping `[N, *features]` to `[N, outputs]`.
      inner_lr: α, the inner SGD learning rate.
      inner_steps: inner steps during meta-training (`fit`).
      eval_inner_steps: inner steps in `evaluate` / `predict` / `call`
        outside training; defaults to `inner_steps`.
      first_order: drop second-order terms (FOMAML).

    Inputs are episode dicts (`support_x` `[T, S, ...]`, `support_y`,
    `query_x` `[T, Q, ...]`); outputs are query predictions `[T, Q, outputs]`.
    Batch norm uses the statistics of the batch it sees (support batch while
    adapting, query batch when predicting), in training and evaluation alike,
    and its moving statistics are never updated.
    """

    def __init__(self, learner, inner_lr=0.4, inner_steps=1, eval_inner_steps=None,
                 first_order=False, **kwargs):
        _check_learning_rate("inner_lr", inner_lr)
        _check_steps("inner_steps", inner_steps)
        _check_steps("eval_inner_steps", eval_inner_steps, allow_none=True)
        super().__init__(learner, **kwargs)
        self.inner_lr = float(inner_lr)
        self.inner_steps = inner_steps
        self.eval_inner_steps = inner_steps if eval_inner_steps is None else eval_inner_steps
        self.first_order = bool(first_order)
        self.functional_learner = adaptation.FunctionalLearner(learner)

    @property
    def eval_inner_steps(self):
        """Inner steps outside training. Setting it re-traces `evaluate`/`predict`."""
        return self._eval_inner_steps

    @eval_inner_steps.setter
    def eval_inner_steps(self, value):
        _check_steps("eval_inner_steps", value)
        self._eval_inner_steps = value
        self.test_function = None
        self.predict_function = None

    @property
    def num_outputs(self):
        return self.learner_output_shape[-1]

    # The parts an algorithm may override -----------------------------------

    def initial_weights(self):
        """θ: the (trainable, non-trainable) weight tensors adaptation starts from."""
        return self.functional_learner.initial_weights()

    def inner_update(self):
        """The update rule `update(weights, grads, step)` of the inner loop,
        built once per meta-batch (read meta-parameters here, outside the
        per-task loop)."""
        return adaptation.sgd_update(self.inner_lr)

    def adapted_weights(self):
        """One bool per learner trainable weight: does it adapt? (All, here.)"""
        return None

    def inner_loss(self, y, y_pred):
        """Compiled loss on one task's support set, `y` `[S]` or `[S, out]`."""
        if self._compile_loss is None:
            raise ValueError(
                f"{type(self).__name__} adapts with the compiled loss: call "
                "`compile(loss=...)` before using the model."
            )
        return self._compile_loss(y, y_pred)

    # The engine ----------------------------------------------------------

    def adapt(self, weights, frozen, support_x, support_y, steps, update, batch_size=None):
        """Adapts `weights` on one task's support set with the update rule
        `update`; returns the trajectory of `steps + 1` weight lists (see
        `adaptation.adapt`)."""
        return adaptation.adapt(
            lambda w, x: self.functional_learner(w, frozen, x),
            self.inner_loss,
            weights,
            support_x,
            support_y,
            steps=steps,
            update=update,
            first_order=self.first_order,
            adapted=self.adapted_weights(),
            batch_size=batch_size,
        )

    def adapt_and_predict(self, support_x, support_y, query_x, training=False):
        steps = self.inner_steps if training else self.eval_inner_steps
        weights, frozen = self.initial_weights()
        update = self.inner_update()

        def task(task_support_x, task_support_y, task_query_x):
            adapted = self.adapt(weights, frozen, task_support_x, task_support_y, steps, update)[-1]
            return self.functional_learner(adapted, frozen, task_query_x)

        return self.map_tasks(task, (support_x, support_y, query_x))

    def predictions_per_step(self, support_x, support_y, query_x, steps, include_initial=True):
        """Query predictions along the adaptation, `[T, steps + 1, Q, ...]`
        (after 0, 1, …, `steps` inner steps; `[T, steps, Q, ...]` without the
        initial weights' predictions when `include_initial=False`)."""
        weights, frozen = self.initial_weights()
        update = self.inner_update()
        first = 0 if include_initial else 1

        def task(task_support_x, task_support_y, task_query_x):
            trajectory = self.adapt(weights, frozen, task_support_x, task_support_y, steps, update)
            return tf.stack([self.functional_learner(w, frozen, task_query_x)
                             for w in trajectory[first:]])

        return self.map_tasks(task, (support_x, support_y, query_x))

    def get_config(self):
        return {
            **super().get_config(),
            "inner_lr": self.inner_lr,
            "inner_steps": self.inner_steps,
            "eval_inner_steps": self.eval_inner_steps,
            "first_order": self.first_order,
        }


@keras.saving.register_keras_serializable(package="keras_meta")
class FOMAML(MAML):
    """First-order MAML: `MAML(..., first_order=True)`."""

    def __init__(self, learner, first_order=True, **kwargs):
        if not first_order:
            raise ValueError("`first_order` must be True for FOMAML; use `MAML` for second order.")
        super().__init__(learner, first_order=True, **kwargs)
