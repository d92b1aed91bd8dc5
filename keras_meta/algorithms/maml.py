"""Model-Agnostic Meta-Learning (Finn et al., 2017) and its first-order variant.

`MAML` is also the base of every gradient-based algorithm: a subclass
overrides only what differs (the update rule, which weights adapt, the outer
objective) and inherits the inner loop (`adaptation.adapt`).
"""

import keras
import tensorflow as tf

from keras_meta import adaptation, arguments, episode, keras_internals, masking, update_rules
from keras_meta.meta_model import MetaModel, unscale_for_distribution


DEFAULT_INNER_LR = 0.4


@keras.saving.register_keras_serializable(package="keras_meta")
class MAML(MetaModel):
    """MAML: learns an initialization from which a few gradient steps on a
    task's support set fit that task.

    For each task, starting from the learner's weights θ, `inner_steps` steps
    of SGD on the support set give φ = θ − α∇L_support(...); the meta-loss is
    the query loss at φ. With `first_order=False` the meta-gradient is exact
    (it differentiates through the inner gradients, second order); with
    `first_order=True` the inner gradients are constants (FOMAML).

    What one inner step does is the model's update rule (`inner_rule`, a
    `keras_meta.update_rules.UpdateRule`): SGD of `inner_lr` by default;
    Meta-SGD, MAML++ and MetaLSTM are MAML with another rule, and any rule
    you write (momentum, Adam in the inner loop, ...) plugs in the same way:
    `km.MAML(learner, inner_rule=km.update_rules.LearnedRates(0.01))` is
    Meta-SGD.

    Args:
      learner: a Keras model mapping `[N, *features]` to `[N, outputs]`.
      inner_lr: α, the inner SGD learning rate (default 0.4); leave it
        unset with `inner_rule`.
      inner_steps: inner steps during meta-training (`fit`).
      eval_inner_steps: inner steps in `evaluate` / `predict` / `call`
        outside training; defaults to `inner_steps`.
      first_order: drop second-order terms (FOMAML).
      per_task_gradients: compute each task's meta-gradient inside the task
        loop and average them (default: memory bounded by the tasks in
        flight, fast to trace). False differentiates the whole meta-batch's
        loss through the task loop instead (the reference path; same result).
      inner_clipnorm: if set, each weight's inner gradient is rescaled to an
        L2 norm of at most this before the update rule reads it
        (`update_rules.ClipByNorm` chained first; clip the outer update with
        the optimizer's own `clipnorm`).
      recompute_inner_steps: keep no activation of the inner steps for the
        meta-gradient and run each step again in the backward pass (gradient
        checkpointing): memory nearly flat in `inner_steps`, for one more
        forward and backward pass of the support set per step. Same
        meta-gradient; the steps are unrolled in the traced graph rather
        than run in a `tf.while_loop` (see `adaptation.adapt`).
      inner_rule: the inner update rule (default `update_rules.SGD(inner_lr)`).

    XLA: `compile(jit_compile=True)`, or Keras's default `"auto"` where a
    GPU is present, compiles every step with XLA, second order included:
    batch norm and max pooling's second derivative take exact paths there
    (`xla`).

    An inner loop that diverges (a non-finite inner loss or adapted weight)
    stops `fit`, `evaluate` and `predict` with a `FloatingPointError` naming
    the inner step, before any weight is updated.

    Inputs are episode dicts (`support_x` `[T, S, ...]`, `support_y`,
    `query_x` `[T, Q, ...]`); outputs are query predictions `[T, Q, outputs]`.
    Batch norm uses the statistics of the batch it sees (support batch while
    adapting, query batch when predicting), in training and evaluation alike,
    and its moving statistics are never updated.

    Example:

    ```python
    model = km.MAML(km.learners.mlp(hidden=(40, 40)), inner_lr=0.01, inner_steps=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(km.data.sinusoid_episodes(meta_batch_size=4), steps_per_epoch=2, epochs=1)
    test = km.data.sinusoid_episodes(meta_batch_size=5, seed=1)
    model.evaluate(test, steps=2)
    ```
    """

    def __init__(self, learner, inner_lr=None, inner_steps=1, eval_inner_steps=None,
                 first_order=False, per_task_gradients=True, inner_clipnorm=None,
                 recompute_inner_steps=False, inner_rule=None, **kwargs):
        if inner_rule is not None and inner_lr is not None:
            raise TypeError(f"{type(self).__name__} takes `inner_lr` or `inner_rule`, not both: "
                            "the rule sets its own learning rate.")
        if inner_rule is None:
            inner_lr = DEFAULT_INNER_LR if inner_lr is None else inner_lr
            arguments.check_finite_number("inner_lr", inner_lr)
            inner_rule = update_rules.SGD(float(inner_lr))
        update_rules.check_rule(inner_rule)
        for name in ("recompute_inner_steps", "first_order", "per_task_gradients"):
            arguments.check_bool(name, locals()[name])
        if recompute_inner_steps and not per_task_gradients:
            raise ValueError("`recompute_inner_steps=True` needs `per_task_gradients=True` (it "
                             "recomputes inner steps inside each task's own gradient).")
        arguments.check_finite_number("inner_clipnorm", inner_clipnorm, above=0, allow_none=True)
        arguments.check_int("inner_steps", inner_steps, minimum=0)
        arguments.check_int("eval_inner_steps", eval_inner_steps, minimum=0, allow_none=True)
        super().__init__(learner, **kwargs)
        self.inner_rule = inner_rule
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.eval_inner_steps = inner_steps if eval_inner_steps is None else eval_inner_steps
        self.first_order = bool(first_order)
        self.per_task_gradients = bool(per_task_gradients)
        self.inner_clipnorm = inner_clipnorm
        self.recompute_inner_steps = recompute_inner_steps
        # What each inner step applies: the rule, after the clipping of `inner_clipnorm`.
        self.step_rule = inner_rule if inner_clipnorm is None else update_rules.chain(
            update_rules.ClipByNorm(inner_clipnorm), inner_rule)
        self.functional_learner = adaptation.FunctionalLearner(learner)

    def build(self, input_shape):
        """Builds the learner (see `MetaModel.build`), then the update rule's
        meta-parameters."""
        super().build(input_shape)
        self.step_rule.build(self, self.learner.trainable_variables)

    @property
    def inner_lr(self):
        """The inner SGD learning rate (None when the model was given an
        `inner_rule`). Setting it changes the SGD rule it made and re-traces
        `fit`, `evaluate` and `predict`."""
        return self._inner_lr

    @inner_lr.setter
    def inner_lr(self, value):
        if value is not None:
            arguments.check_finite_number("inner_lr", value)
            value = float(value)
            if isinstance(self.inner_rule, update_rules.SGD):
                self.inner_rule.learning_rate = value
        self._inner_lr = value
        self.train_function = self.test_function = self.predict_function = None

    @property
    def eval_inner_steps(self):
        """Inner steps outside training. Setting it re-traces `evaluate`/`predict`."""
        return self._eval_inner_steps

    @eval_inner_steps.setter
    def eval_inner_steps(self, value):
        arguments.check_int("eval_inner_steps", value, minimum=0)
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

    def adaptation_mask(self):
        """One bool per learner trainable weight: does the inner loop adapt
        it? None adapts every weight (MAML's choice)."""
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
        if keras_internals.compiled_loss(self) is None:
            raise ValueError(
                f"{type(self).__name__} adapts with the compiled loss: call "
                "`compile(loss=...)` before using the model."
            )
        return keras_internals.compiled_loss(self)(y, y_pred, sample_weight)

    # The inner loop ------------------------------------------------------

    def adapt(self, weights, non_trainable, support_x, support_y, steps, batch_size=None,
              trajectory=False):
        """Adapts `weights` on one task's support set with `inner_rule`;
        returns the adapted weights, or with `trajectory=True` the `steps + 1`
        weight lists along the way (see `adaptation.adapt`).

        Args:
          weights, non_trainable: the learner's trainable and non-trainable
            weight tensors to start from (`initial_weights()`).
          support_x: `[S, *features]`; support_y: `[S]` or `[S, out]`.
          steps: inner steps; batch_size: support examples per step (None: all).
          trajectory: return every step's weights (the steps are then
            unrolled in the graph) rather than the last (a `tf.while_loop`).
        """
        ways = masking.current_ways()  # bound now: a recomputed step may run outside the task
        return adaptation.adapt(
            lambda w, x: masking.mask_absent_classes(
                self.functional_learner(w, non_trainable, x), ways),
            self.inner_loss,
            weights,
            support_x,
            support_y,
            steps=steps,
            rule=self.step_rule,
            first_order=self.first_order,
            adapted=self.adaptation_mask(),
            batch_size=batch_size,
            recompute=self.recompute_inner_steps,
            trajectory=trajectory,
        )

    def predict_task(self, support_x, support_y, query_x, steps, from_step=None):
        """Adapts on one task's support set and predicts its query set.

        Args:
          support_x: `[S, *features]`; support_y: `[S]` or `[S, out]`;
          query_x: `[Q, *features]`; steps: inner steps.
          from_step: None for the predictions after `steps` steps, `[Q, ...]`;
            an int k for those after each of k, …, `steps` steps stacked,
            `[steps − k + 1, Q, ...]` (the inner steps are then unrolled).
        """
        weights, non_trainable = self.initial_weights()
        if from_step is None:
            adapted = self.adapt(weights, non_trainable, support_x, support_y, steps)
            return self.forward(adapted, non_trainable, query_x)
        trajectory = self.adapt(weights, non_trainable, support_x, support_y, steps,
                                trajectory=True)
        return tf.stack([self.forward(w, non_trainable, query_x)
                         for w in trajectory[from_step:]])

    def forward(self, weights, non_trainable, x):
        """The learner at `weights` on `x` `[N, *features]` → `[N, outputs]`;
        in a padded task, the logits of its absent classes masked
        (`masking.current_ways`)."""
        return masking.mask_absent_classes(self.functional_learner(weights, non_trainable, x),
                                           masking.current_ways())

    def adapt_and_predict(self, support_x, support_y, query_x, training=False):
        steps = self.inner_steps if training else self.eval_inner_steps
        return self.map_tasks(lambda sx, sy, qx: self.predict_task(sx, sy, qx, steps),
                              (support_x, support_y, query_x))

    def predictions_per_step(self, support_x, support_y, query_x, steps, include_initial=True,
                             support_mask=None, query_mask=None):
        """Query predictions along the adaptation, `[T, steps + 1, Q, ...]`
        (after 0, 1, …, `steps` inner steps; `[T, steps, Q, ...]` without the
        initial weights' predictions when `include_initial=False`); with
        masks `[T, S]`, `[T, Q]`, each task on its real entries."""
        first = 0 if include_initial else 1
        if support_mask is not None or query_mask is not None:
            inputs = {episode.SUPPORT_X: support_x, episode.SUPPORT_Y: support_y,
                      episode.QUERY_X: query_x}
            for key, mask in ((episode.SUPPORT_MASK, support_mask),
                              (episode.QUERY_MASK, query_mask)):
                if mask is not None:
                    inputs[key] = mask
            return self.map_real_tasks(inputs, lambda task, *_: [self.predictions_per_step(
                *self.episode_tensors(task), steps, include_initial)], query_axis=1)[0]
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
        tasks of `task_loss`, plus the regularisers of θ. `task_loss`
        predicts with `predict_task`, the per-task forward pass that
        `adapt_and_predict` maps over the tasks: training and inference share
        it, and the loss is taken per task so that `meta_gradients` can
        differentiate task by task."""
        y_pred, losses = self.map_tasks(
            lambda *elements: [self.in_variable_dtype(v) for v in self.task_loss(*elements)],
            self.task_elements(x, y, sample_weight),
            [tf.TensorSpec(None, self.variable_dtype), tf.TensorSpec((), self.variable_dtype)])
        loss = tf.reduce_mean(losses)
        if self.losses:
            loss += tf.cast(tf.add_n([keras_internals.aggregate_added_loss(self, l)
                                     for l in self.losses]),
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
            return [predictions, self.in_variable_dtype(loss), *grads]

        signature = [tf.TensorSpec(None, self.variable_dtype),
                     tf.TensorSpec((), self.variable_dtype)]
        signature += [tf.TensorSpec(v.shape, v.dtype) for v in variables]
        y_pred, losses, *grads = self.map_tasks(task, self.task_elements(x, y, sample_weight),
                                                signature)
        grads = [tf.reduce_mean(g, axis=0) for g in grads]
        loss = tf.reduce_mean(losses)
        if self.losses:  # regularisers of θ, differentiated once for the meta-batch
            with tf.GradientTape() as tape:
                penalty = tf.add_n([keras_internals.aggregate_added_loss(self, l)
                                    for l in self.losses])
                scaled_penalty = self.optimizer.scale_loss(penalty)  # as the tasks' losses
            grads = [g if r is None else g + r
                     for g, r in zip(grads, tape.gradient(scaled_penalty, variables))]
            loss += tf.cast(penalty, loss.dtype)
        return grads, y_pred, loss

    def get_config(self):
        """The constructor's arguments; a subclass whose rule follows from its
        own arguments removes `inner_rule`."""
        custom = self.inner_lr is None
        return {
            **super().get_config(),
            "inner_lr": self.inner_lr,
            "inner_steps": self.inner_steps,
            "eval_inner_steps": self.eval_inner_steps,
            "first_order": self.first_order,
            "per_task_gradients": self.per_task_gradients,
            "inner_clipnorm": self.inner_clipnorm,
            "recompute_inner_steps": self.recompute_inner_steps,
            "inner_rule": (keras.saving.serialize_keras_object(self.inner_rule) if custom
                           else None),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("inner_rule") is not None:
            config["inner_rule"] = keras.saving.deserialize_keras_object(config["inner_rule"])
        return super().from_config(config)


@keras.saving.register_keras_serializable(package="keras_meta")
class FOMAML(MAML):
    """First-order MAML: `MAML(..., first_order=True)`.

    Args:
      learner: as for `MAML`.
      first_order: True; FOMAML is first-order by definition.
      **kwargs: the other arguments of `MAML`.

    Example:

    ```python
    model = km.FOMAML(km.learners.conv4(ways=5), inner_lr=0.4, inner_steps=1)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    ```
    """

    def __init__(self, learner, first_order=True, **kwargs):
        if first_order is not True:
            raise ValueError("`first_order` must be True for FOMAML; use `MAML` for second order.")
        super().__init__(learner, first_order=True, **kwargs)
