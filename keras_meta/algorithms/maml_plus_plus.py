"""MAML++ (Antoniou, Edwards & Storkey, "How to train your MAML", 2019)."""

import keras
import numpy as np
import tensorflow as tf

from keras_meta.algorithms.maml import MAML, _check_steps


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

    Evaluation with more steps than `inner_steps` reuses the last step's
    learned rates and batch-norm values. `fit` adds a callback that keeps the
    model's `epoch` variable current (it is saved with the model).
    """

    def __init__(self, learner, inner_lr=0.1, inner_steps=5, eval_inner_steps=None,
                 learn_inner_rates=True, multi_step_loss=True, multi_step_loss_epochs=10,
                 per_step_batch_norm=True, first_order_epochs=0, **kwargs):
        _check_steps("first_order_epochs", first_order_epochs)
        if isinstance(multi_step_loss_epochs, bool) or not isinstance(multi_step_loss_epochs, int) \
                or multi_step_loss_epochs < 1:
            raise ValueError(f"`multi_step_loss_epochs` must be an int >= 1; "
                             f"received {multi_step_loss_epochs!r}.")
        kwargs.pop("first_order", None)
        super().__init__(learner, inner_lr=inner_lr, inner_steps=inner_steps,
                         eval_inner_steps=eval_inner_steps, first_order=first_order_epochs > 0,
                         **kwargs)
        if inner_steps < 1:
            raise ValueError("`inner_steps` must be >= 1 for MAML++; received 0.")
        self.learn_inner_rates = bool(learn_inner_rates)
        self.multi_step_loss = bool(multi_step_loss)
        self.multi_step_loss_epochs = multi_step_loss_epochs
        self.per_step_batch_norm = bool(per_step_batch_norm)
        self.first_order_epochs = first_order_epochs
        self.epoch = self.add_weight(shape=(), dtype="int64", initializer="zeros",
                                     trainable=False, name="epoch")

    def build(self, input_shape):
        super().build(input_shape)
        learner_weights = self.learner.trainable_variables
        self.batch_norm_indices = [
            i for i, v in enumerate(learner_weights) if self.per_step_batch_norm and any(
                v is w for layer in self.learner.layers
                if isinstance(layer, keras.layers.BatchNormalization)
                for w in layer.trainable_weights)]
        self.step_batch_norm = [
            self.add_weight(shape=(self.inner_steps + 1, *learner_weights[i].shape),
                            dtype=learner_weights[i].dtype, name=f"step_batch_norm_{i}",
                            initializer=_repeated(learner_weights[i], self.inner_steps + 1))
            for i in self.batch_norm_indices]
        if self.learn_inner_rates:
            self.inner_rates = self.add_weight(
                shape=(len(learner_weights), self.inner_steps), dtype=self.variable_dtype,
                initializer=keras.initializers.Constant(np.asarray(self.inner_lr, self.variable_dtype)),
                name="inner_rates")

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
        weights, frozen = self.functional_learner.initial_weights()
        for i, values in zip(self.batch_norm_indices, self.step_batch_norm):
            weights[i] = values.value[0]
        return weights, frozen

    def adapted_weights(self):
        """Per-step batch-norm weights are meta-learned, not adapted."""
        return [i not in self.batch_norm_indices for i in range(len(self.learner.trainable_variables))]

    def inner_update(self):
        last = self.inner_steps - 1
        rates = None
        if self.learn_inner_rates:
            rates = [tf.unstack(row) for row in tf.unstack(self.inner_rates.value)]
        # Per-step values are split outside the task loop: slicing a captured
        # tensor inside it breaks TensorFlow's while-loop gradient.
        batch_norm = dict(zip(self.batch_norm_indices,
                              (tf.unstack(v.value) for v in self.step_batch_norm)))

        def update(weights, grads, step):
            new = []
            for i, (w, g) in enumerate(zip(weights, grads)):
                if i in batch_norm:
                    new.append(batch_norm[i][min(step + 1, self.inner_steps)])
                elif g is None:
                    new.append(w)
                elif rates is not None:
                    new.append(w - tf.cast(rates[i][min(step, last)], w.dtype) * g)
                else:
                    new.append(w - tf.constant(self.inner_lr, w.dtype) * g)
            return new

        return update

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
        del config["first_order"]
        return {
            **config,
            "learn_inner_rates": self.learn_inner_rates,
            "multi_step_loss": self.multi_step_loss,
            "multi_step_loss_epochs": self.multi_step_loss_epochs,
            "per_step_batch_norm": self.per_step_batch_norm,
            "first_order_epochs": self.first_order_epochs,
        }
