"""MAML++ (Antoniou, Edwards & Storkey, "How to train your MAML", 2019)."""

import keras
import tensorflow as tf

from keras_meta import arguments, update_rules
from keras_meta.algorithms.maml import MAML


def step_loss_weights(steps, epoch, anneal_epochs):
    """Multi-step loss weights `[steps]` at `epoch` (MAML++ schedule).

    All steps start at `1/steps`. Each epoch, every non-final weight loses
    `1/(steps · anneal_epochs)` down to a floor of `0.03/steps`, and the final
    weight gains what they lose (capped at `1 − (steps − 1) · 0.03/steps`),
    so the weights always sum to 1 and after `anneal_epochs` epochs the loss
    is (almost) the final step's alone.

    Args:
      steps: number of inner steps N (≥ 1).
      epoch: scalar tensor or number, the current epoch (0-based).
      anneal_epochs: epochs over which the schedule anneals (≥ 1).
    """
    epoch = tf.cast(epoch, tf.float64)
    decay = epoch / (steps * anneal_epochs)
    floor = 0.03 / steps
    non_final = tf.maximum(1.0 / steps - decay, floor) * tf.ones([steps - 1], tf.float64)
    final = tf.minimum(1.0 / steps + (steps - 1) * decay, 1.0 - (steps - 1) * floor)
    return tf.concat([non_final, [final]], axis=0)


def _repeated(variable, times):
    """Initializer: `times` copies of `variable`'s current value, `[times, *shape]`."""

    def initializer(shape, dtype=None):
        del shape
        return tf.cast(tf.repeat(variable.value[None], times, axis=0), dtype)

    return initializer


@keras.saving.register_keras_serializable(package="keras_meta")
class PerStepBatchNorm(update_rules.UpdateRule):
    """Sets every batch-norm scale and offset of the learner to a
    meta-learned value per step (MAML++'s BNWB): `values`, one variable
    `step_batch_norm_<i>` `[steps + 1, ...]` per such weight (the learner's
    weight `i`), each row starting at the learner's value. After step `k`
    the weight is row `k + 1` (rows past `steps` reuse the last); row 0 is
    the value adaptation starts from (`MAMLPlusPlus.initial_weights`).
    Chain it last: it overrides what earlier rules did to those weights."""

    def __init__(self, steps):
        arguments.check_int("steps", steps, minimum=1)
        self.steps = steps
        self.indices, self.values = [], []

    def build(self, model, weights):
        norms = [w for layer in model.learner.layers
                 if isinstance(layer, keras.layers.BatchNormalization)
                 for w in layer.trainable_weights]
        self.indices = [i for i, v in enumerate(weights) if any(v is w for w in norms)]
        self.values = [
            model.add_weight(shape=(self.steps + 1, *weights[i].shape), dtype=weights[i].dtype,
                             name=f"step_batch_norm_{i}",
                             initializer=_repeated(weights[i], self.steps + 1))
            for i in self.indices]

    def update(self, grads, state, params, *, step, loss):
        updates = list(grads)
        row = tf.minimum(step + 1, self.steps)
        for i, values in zip(self.indices, self.values):
            updates[i] = tf.gather(values.value, row) - params[i]
        return updates, state

    def get_config(self):
        return {"steps": self.steps}


class _EpochTracker(keras.callbacks.Callback):
    """Tells a `MAMLPlusPlus` model which epoch `fit` is in."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.set_epoch(epoch)


@keras.saving.register_keras_serializable(package="keras_meta")
class MAMLPlusPlus(MAML):
    """MAML++: MAML with the stabilising changes of Antoniou et al. (2019).

    Each option can be switched off, leaving plain MAML:

    - `learn_inner_rates` (LSLR): a learned inner learning rate per weight
      tensor and per step, `inner_rates` of shape `[weights, inner_steps]`,
      initialised to `inner_lr` (rows of per-step batch-norm weights are unused).
    - `multi_step_loss` (MSL): the meta-loss is `Σ_k w_k L_query(φ_k)` over
      the inner steps `k = 1..N`, with weights from `step_loss_weights`
      annealed over `multi_step_loss_epochs` epochs towards the final step.
    - `per_step_batch_norm` (BNWB): every batch-norm scale and offset has one
      meta-learned value per step (`[inner_steps + 1, ...]`); step `k` of the
      inner loop and the prediction after `k` steps use value `k`. They are
      not adapted by the inner loop. Batch norm keeps using the statistics of
      the batch it sees (see `MAML`).
    - `first_order_epochs` (derivative-order annealing): first-order
      meta-gradients for the first `first_order_epochs` epochs, exact second
      order afterwards. The switch re-traces the train step once.
    - Cosine annealing of the outer learning rate is the optimizer's job:
      compile with `keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(...))`.

    Args:
      learner: as for `MAML`.
      inner_lr: the initial inner learning rate (every learned rate's, with
        `learn_inner_rates`).
      inner_steps: inner steps during meta-training, at least 1.
      eval_inner_steps: inner steps outside training; default `inner_steps`.
      learn_inner_rates: LSLR, see above.
      multi_step_loss: MSL, see above.
      multi_step_loss_epochs: epochs over which MSL's weights anneal, at least 1.
      per_step_batch_norm: BNWB, see above.
      first_order_epochs: epochs of first-order meta-gradients, see above.
      **kwargs: the other arguments of `MAML` (not `first_order` nor
        `inner_rule`).

    Evaluation with more steps than `inner_steps` reuses the last step's
    learned rates and batch-norm values. `fit` adds a callback that keeps the
    model's `epoch` variable current (it is saved with the model).

    Example:

    ```python
    model = km.MAMLPlusPlus(km.learners.conv4(ways=5), inner_lr=0.1, inner_steps=5,
                            multi_step_loss_epochs=10, first_order_epochs=5)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    ```
    """

    def __init__(self, learner, inner_lr=0.1, inner_steps=5, eval_inner_steps=None,
                 learn_inner_rates=True, multi_step_loss=True, multi_step_loss_epochs=10,
                 per_step_batch_norm=True, first_order_epochs=0, **kwargs):
        arguments.reject("MAMLPlusPlus", kwargs, {
            "first_order": "derivative-order annealing sets it; use `first_order_epochs`.",
            "inner_rule": "its rule follows from `learn_inner_rates` and `per_step_batch_norm`; "
                          "use `km.MAML(learner, inner_rule=...)` for another rule."})
        arguments.check_int("first_order_epochs", first_order_epochs, minimum=0)
        arguments.check_int("multi_step_loss_epochs", multi_step_loss_epochs, minimum=1)
        arguments.check_int("inner_steps", inner_steps, minimum=1)
        arguments.check_finite_number("inner_lr", inner_lr)
        rules = [update_rules.PerStepRates(inner_steps, inner_lr) if learn_inner_rates
                 else update_rules.SGD(float(inner_lr))]
        if per_step_batch_norm:
            rules.append(PerStepBatchNorm(inner_steps))
        super().__init__(learner, inner_steps=inner_steps, eval_inner_steps=eval_inner_steps,
                         first_order=first_order_epochs > 0,
                         inner_rule=update_rules.chain(*rules), **kwargs)
        self.inner_lr = float(inner_lr)
        self.learn_inner_rates = bool(learn_inner_rates)
        self.multi_step_loss = bool(multi_step_loss)
        self.multi_step_loss_epochs = multi_step_loss_epochs
        self.per_step_batch_norm = bool(per_step_batch_norm)
        self.first_order_epochs = first_order_epochs
        self.epoch = self.add_weight(shape=(), dtype="int64", initializer="zeros",
                                     trainable=False, name="epoch")

    def rule_part(self, kind):
        """The part of the update rule of type `kind`, or None."""
        rules = getattr(self.inner_rule, "rules", [self.inner_rule])
        return next((r for r in rules if isinstance(r, kind)), None)

    @property
    def inner_rates(self):
        """LSLR's learned rates `[weights, inner_steps]` (with `learn_inner_rates`)."""
        rates = self.rule_part(update_rules.PerStepRates)
        return None if rates is None else rates.rates

    @property
    def step_batch_norm(self):
        """BNWB's per-step batch-norm weights, `[inner_steps + 1, ...]` each."""
        norms = self.rule_part(PerStepBatchNorm)
        return [] if norms is None else norms.values

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = [_EpochTracker(), *(callbacks or [])]  # first, so others see the epoch
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def set_epoch(self, epoch):
        """Records the epoch; switches to second order at `first_order_epochs`."""
        self.epoch.assign(epoch)
        first_order = epoch < self.first_order_epochs
        if first_order != self.first_order:
            self.first_order = first_order
            if self.train_function is not None:
                self.make_train_function(force=True)

    def step_loss_weights(self):
        """Current multi-step loss weights `[inner_steps]`."""
        return step_loss_weights(self.inner_steps, self.epoch, self.multi_step_loss_epochs)

    # What differs from MAML ---------------------------------------------

    def initial_weights(self):
        """θ, with each per-step batch-norm weight at its row 0."""
        weights, non_trainable = self.functional_learner.initial_weights()
        norms = self.rule_part(PerStepBatchNorm)
        for i, values in zip(norms.indices if norms else [], self.step_batch_norm):
            weights[i] = values.value[0]
        return weights, non_trainable

    def adaptation_mask(self):
        """Per-step batch-norm weights are meta-learned, not adapted."""
        norms = self.rule_part(PerStepBatchNorm)
        indices = norms.indices if norms else []
        return [i not in indices for i in range(len(self.learner.trainable_variables))]

    def task_loss(self, support_x, support_y, query_x, query_y, sample_weight=None):
        if not self.multi_step_loss:
            return super().task_loss(support_x, support_y, query_x, query_y, sample_weight)
        per_step = self.predict_task(support_x, support_y, query_x, self.inner_steps,
                                     from_step=1)  # [N, Q, ...]
        step_weights = self.step_loss_weights()
        loss = 0.0
        for k in range(self.inner_steps):
            step_loss = self.apply_compiled_loss(query_y, per_step[k], sample_weight)
            loss += tf.cast(step_weights[k], step_loss.dtype) * step_loss
        return per_step[-1], loss

    def get_config(self):
        config = super().get_config()
        del config["first_order"], config["inner_rule"]
        return {
            **config,
            "learn_inner_rates": self.learn_inner_rates,
            "multi_step_loss": self.multi_step_loss,
            "multi_step_loss_epochs": self.multi_step_loss_epochs,
            "per_step_batch_norm": self.per_step_batch_norm,
            "first_order_epochs": self.first_order_epochs,
        }
