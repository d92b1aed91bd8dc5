"""Model-Agnostic Meta-Learning (Finn et al., 2017) and its first-order variant.

`MAML` is also the base of every gradient-based algorithm: a subclass
overrides only what differs (the update rule, which weights adapt, the outer
objective) and inherits the inner loop of `keras_meta.adaptation`.
"""

import math

import keras
import tensorflow as tf

from keras_meta import adaptation, episode
from keras_meta.meta_model import MetaModel, unscale_for_distribution


def _check_steps(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be an int >= 0; received {value!r}.")


def _check_clipnorm(value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not 0 < value < math.inf):
        raise ValueError(f"`inner_clipnorm` must be None or a number > 0; received {value!r}.")


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False; received {value!r}.")


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
      per_task_gradients: compute each task's meta-gradient inside the task
        loop and average them (default: memory bounded by the tasks in
        flight, fast to trace). False differentiates the whole meta-batch's
        loss through the task loop instead (the reference path; same result).
      inner_clipnorm: if set, each weight's inner gradient is rescaled to an
        L2 norm of at most this before the inner update (clip the outer
        update with the optimizer's own `clipnorm`).
      recompute_inner_steps: keep no activation of the inner steps for the
        meta-gradient and run each step again in the backward pass (gradient
        checkpointing): memory nearly flat in `inner_steps`, for one more
        forward and backward pass of the support set per step. Same
        meta-gradient.

    An inner loop that diverges (a non-finite inner loss or adapted weight)
    stops `fit`, `evaluate` and `predict` with a `FloatingPointError` naming
    the inner step, before any weight is updated.

    Inputs are episode dicts (`support_x` `[T, S, ...]`, `support_y`,
    `query_x` `[T, Q, ...]`); outputs are query predictions `[T, Q, outputs]`.
    Batch norm uses the statistics of the batch it sees (support batch while
    adapting, query batch when predicting), in training and evaluation alike,
    and its moving statistics are never updated.
    """

    def __init__(self, learner, inner_lr=0.4, inner_steps=1, eval_inner_steps=None,
                 first_order=False, per_task_gradients=True, inner_clipnorm=None,
                 recompute_inner_steps=False, **kwargs):
        _check_learning_rate("inner_lr", inner_lr)
        _check_bool("recompute_inner_steps", recompute_inner_steps)
        if recompute_inner_steps and not per_task_gradients:
            raise ValueError("`recompute_inner_steps=True` needs `per_task_gradients=True` (it "
                             "recomputes inner steps inside each task's own gradient).")
        _check_clipnorm(inner_clipnorm)
        _check_steps("inner_steps", inner_steps)
        _check_steps("eval_inner_steps", eval_inner_steps, allow_none=True)
        super().__init__(learner, **kwargs)
        self.inner_lr = float(inner_lr)
        self.inner_steps = inner_steps
        self.eval_inner_steps = inner_steps if eval_inner_steps is None else eval_inner_steps
        self.first_order = bool(first_order)
        self.per_task_gradients = bool(per_task_gradients)
        self.inner_clipnorm = inner_clipnorm
        self.recompute_inner_steps = recompute_inner_steps
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
        """Inner loss: compiled loss on one task's support set, `y` `[S]` or
        `[S, out]` (never scaled for distribution: each replica adapts its own
        tasks exactly as one device would)."""
        return unscale_for_distribution(self.apply_compiled_loss(y, y_pred))

    def task_loss(self, support_x, support_y, query_x, query_y, sample_weight=None):
        """One task's query predictions `[Q, ...]` after `inner_steps` steps and
        its meta-loss: the compiled loss on its query set."""
        predictions = self.predict_task(support_x, support_y, query_x, self.inner_steps)
        return predictions, self.apply_compiled_loss(query_y, predictions, sample_weight)

    def apply_compiled_loss(self, y, y_pred, sample_weight=None):
        """The compiled loss on one task: `y` `[N]` or `[N, out]`, `y_pred` `[N, ...]`."""
        if self._compile_loss is None:
            raise ValueError(
                f"{type(self).__name__} adapts with the compiled loss: call "
                "`compile(loss=...)` before using the model."
            )
        return self._compile_loss(y, y_pred, sample_weight)

    # The engine ----------------------------------------------------------

    def adapt(self, weights, frozen, support_x, support_y, steps, batch_size=None):
        """Adapts `weights` on one task's support set with `inner_update`;
        returns the trajectory of `steps + 1` weight lists (see
        `adaptation.adapt`)."""
        return adaptation.adapt(
            lambda w, x: self.functional_learner(w, frozen, x),
            self.inner_loss,
            weights,
            support_x,
            support_y,
            steps=steps,
            update=self.step_update(),
            first_order=self.first_order,
            adapted=self.adapted_weights(),
            batch_size=batch_size,
            clipnorm=self.inner_clipnorm,
            recompute=self.recompute_inner_steps,
        )

    def step_update(self):
        """`inner_update()`, or with `recompute_inner_steps` a rule that builds
        it anew in each step, so that a recomputed step reads the
        meta-parameters itself and passes them their gradients."""
        if not self.recompute_inner_steps:
            return self.inner_update()
        return lambda *args: self.inner_update()(*args)

    def predict_task(self, support_x, support_y, query_x, steps, from_step=None):
        """Adapts on one task's support set and predicts its query set.

        Args:
          support_x: `[S, *features]`; support_y: `[S]` or `[S, out]`;
          query_x: `[Q, *features]`; steps: inner steps.
          from_step: None for the predictions after `steps` steps, `[Q, ...]`;
            an int k for those after each of k, …, `steps` steps stacked,
            `[steps − k + 1, Q, ...]`.
        """
        weights, frozen = self.initial_weights()
        trajectory = self.adapt(weights, frozen, support_x, support_y, steps)
        if from_step is None:
            return self.functional_learner(trajectory[-1], frozen, query_x)
        return tf.stack([self.functional_learner(w, frozen, query_x)
                         for w in trajectory[from_step:]])

    def adapt_and_predict(self, support_x, support_y, query_x, training=False):
        steps = self.inner_steps if training else self.eval_inner_steps
        return self.map_tasks(lambda sx, sy, qx: self.predict_task(sx, sy, qx, steps),
                              (support_x, support_y, query_x))

    def predictions_per_step(self, support_x, support_y, query_x, steps, include_initial=True):
        """Query predictions along the adaptation, `[T, steps + 1, Q, ...]`
        (after 0, 1, …, `steps` inner steps; `[T, steps, Q, ...]` without the
        initial weights' predictions when `include_initial=False`)."""
        first = 0 if include_initial else 1
        return self.map_tasks(
            lambda sx, sy, qx: self.predict_task(sx, sy, qx, steps, from_step=first),
            (support_x, support_y, query_x))

    def task_elements(self, x, y, sample_weight=None):
        """The validated per-task tensors `task_loss` takes, each `[T, ...]`."""
        support_x, support_y, query_x = self.episode_tensors(x)
        y = self.check_labels(episode.validate_targets(episode.validate_inputs(x), y), "query_y")
        elements = (support_x, support_y, query_x, y)
        if sample_weight is not None:
            elements += (tf.convert_to_tensor(sample_weight),)
        return elements

    def meta_loss(self, x, y, sample_weight=None):
        """Query predictions `[T, Q, ...]` and the meta-loss: the mean over
        tasks of `task_loss`, plus the regularisers of θ."""
        y_pred, losses = self.map_tasks(
            lambda *elements: [tf.cast(v, self.compute_dtype) for v in self.task_loss(*elements)],
            self.task_elements(x, y, sample_weight),
            [tf.TensorSpec(None, self.compute_dtype), tf.TensorSpec((), self.compute_dtype)])
        loss = tf.reduce_mean(losses)
        if self.losses:
            loss += tf.cast(tf.add_n([self._aggregate_additional_loss(l) for l in self.losses]),
                            loss.dtype)
        return y_pred, loss

    def meta_gradients(self, x, y, sample_weight=None):
        """Meta-gradients computed task by task.

        Each iteration of the task loop opens its own outer tape around the
        task's adaptation (inner tapes included) and query loss, and returns
        that task's exact gradient; the meta-gradient is their mean over
        tasks. Only the tasks in flight hold activations, so memory does not
        grow with the meta-batch size, and no gradient flows through the loop.
        With the default mean reduction this equals the gradient of the
        compiled loss on the whole `[T, Q, ...]` query batch.
        """
        if not self.per_task_gradients:
            return super().meta_gradients(x, y, sample_weight)
        variables = self.trainable_variables

        def task(*elements):
            with tf.GradientTape() as tape:
                predictions, loss = self.task_loss(*elements)
                scaled_loss = self.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled_loss, variables)
            grads = [tf.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(grads, variables)]
            return [predictions, tf.cast(loss, self.compute_dtype), *grads]

        signature = [tf.TensorSpec(None, self.compute_dtype), tf.TensorSpec((), self.compute_dtype)]
        signature += [tf.TensorSpec(v.shape, v.dtype) for v in variables]
        y_pred, losses, *grads = self.map_tasks(task, self.task_elements(x, y, sample_weight),
                                                signature)
        grads = [tf.reduce_mean(g, axis=0) for g in grads]
        loss = tf.reduce_mean(losses)
        if self.losses:  # regularisers of θ, differentiated once for the meta-batch
            with tf.GradientTape() as tape:
                penalty = tf.add_n([self._aggregate_additional_loss(l) for l in self.losses])
            grads = [g if r is None else g + r
                     for g, r in zip(grads, tape.gradient(penalty, variables))]
            loss += tf.cast(penalty, loss.dtype)
        return grads, y_pred, loss

    def get_config(self):
        return {
            **super().get_config(),
            "inner_lr": self.inner_lr,
            "inner_steps": self.inner_steps,
            "eval_inner_steps": self.eval_inner_steps,
            "first_order": self.first_order,
            "per_task_gradients": self.per_task_gradients,
            "inner_clipnorm": self.inner_clipnorm,
            "recompute_inner_steps": self.recompute_inner_steps,
        }


@keras.saving.register_keras_serializable(package="keras_meta")
class FOMAML(MAML):
    """First-order MAML: `MAML(..., first_order=True)`."""

    def __init__(self, learner, first_order=True, **kwargs):
        if not first_order:
            raise ValueError("`first_order` must be True for FOMAML; use `MAML` for second order.")
        super().__init__(learner, first_order=True, **kwargs)
