"""The LSTM meta-learner (Ravi & Larochelle, "Optimization as a model for
few-shot learning", 2017)."""

import keras
import numpy as np
import tensorflow as tf

from keras_meta import arguments, coordinatewise, update_rules
from keras_meta.algorithms.maml import MAML

@keras.saving.register_keras_serializable(package="keras_meta")
class LSTMUpdate(update_rules.UpdateRule):
    """Ravi & Larochelle's LSTM meta-learner as an update rule: the cell
    state is the learner's parameters (see `MetaLSTM` for the equations).

    Its state per task is `[h, c]` of the first layer `[P, H]` and the
    previous forget and input gates `[P]`, for the `P` adapted coordinates;
    its weights (`lstm_weights`, `forget_kernel`, `forget_bias`,
    `input_kernel`, `input_bias`) are created on the model.

    Args:
      hidden_units: `H`.
    """

    def __init__(self, hidden_units=20):
        arguments.check_int("hidden_units", hidden_units, minimum=1)
        self.hidden_units = hidden_units

    def build(self, model, weights):
        units = self.hidden_units
        self.lstm_weights = coordinatewise.add_lstm_weights(model, 4, units, "lstm")
        small = keras.initializers.RandomUniform(-0.01, 0.01)
        self.forget_kernel = model.add_weight(shape=(units + 2,), initializer=small,
                                              name="forget_kernel")
        self.forget_bias = model.add_weight(
            shape=(), initializer=keras.initializers.RandomUniform(4.0, 6.0), name="forget_bias")
        self.input_kernel = model.add_weight(shape=(units + 2,), initializer=small,
                                             name="input_kernel")
        self.input_bias = model.add_weight(
            shape=(), initializer=keras.initializers.RandomUniform(-5.0, -4.0), name="input_bias")

    def init(self, params):
        size = sum(int(np.prod(p.shape)) for p in params)
        dtype = params[0].dtype
        return [tf.zeros([size, self.hidden_units], dtype), tf.zeros([size, self.hidden_units], dtype),
                tf.zeros([size], dtype), tf.zeros([size], dtype)]

    def update(self, grads, state, params, *, step, loss):
        h, c, forget, input_gate = state
        theta = coordinatewise.flatten(params)
        gradient = coordinatewise.flatten(
            [tf.zeros_like(p) if g is None else g for p, g in zip(params, grads)])
        loss_inputs = coordinatewise.preprocess(tf.cast(loss, theta.dtype)[None])
        inputs = tf.concat([coordinatewise.preprocess(gradient),
                            tf.broadcast_to(loss_inputs, [tf.shape(theta)[0], 2])], axis=-1)
        h, c = coordinatewise.lstm_step(inputs, (h, c), *[w.value for w in self.lstm_weights])
        forget = _gate(h, theta, forget, self.forget_kernel.value, self.forget_bias.value)
        input_gate = _gate(h, theta, input_gate, self.input_kernel.value, self.input_bias.value)
        updates = coordinatewise.unflatten(forget * theta - input_gate * gradient - theta, params)
        return ([None if g is None else u for u, g in zip(updates, grads)],
                [h, c, forget, input_gate])

    def get_config(self):
        return {"hidden_units": self.hidden_units}


def _gate(h, theta, previous, kernel, bias):
    """`σ(kernel · [h, θ, previous] + bias)` `[P]` for `h` `[P, H]`."""
    return tf.sigmoid(tf.linalg.matvec(tf.concat(
        [h, theta[:, None], previous[:, None]], axis=-1), kernel) + bias)


@keras.saving.register_keras_serializable(package="keras_meta")
class MetaLSTM(MAML):
    """An LSTM whose cell state is the learner's parameters produces the
    learner's updates on each task's support set.

    All trainable learner weights, flattened, are `P` coordinates θ; the same
    two-layer LSTM runs on every coordinate. At inner step `t`, with the
    support loss `L_t` and its gradient `∇_t` at `θ_{t−1}`:

        h_t = LSTM([pre(∇_t), pre(L_t)], h_{t−1})          (first layer, `hidden_units`)
        f_t = σ(w_F · [h_t, θ_{t−1}, f_{t−1}] + b_F)        (forget gate)
        i_t = σ(w_I · [h_t, θ_{t−1}, i_{t−1}] + b_I)        (input gate: a learned rate)
        θ_t = f_t ⊙ θ_{t−1} − i_t ⊙ ∇_t                    (the cell update)

    `pre` is the preprocessing of Andrychowicz et al. (2016) and
    `f_0 = i_0 = 0`. As in the paper, `b_F ~ U(4, 6)` (f starts near 1),
    `b_I ~ U(−5, −4)` (i starts near 0.01) and `w_F, w_I ~ U(−0.01, 0.01)`.
    The meta-learner's weights and the initial parameters θ_0 (the learner's
    weights) are meta-trained by the compiled optimizer on the query loss
    after `inner_steps` steps; with `first_order=True` (the paper's
    simplification, default) the gradient and loss inputs are constants.
    Each step runs on the whole support set with the compiled loss: `MAML`
    with the rule `LSTMUpdate` (`inner_rule`, whose weights these are);
    batch norm as in `MAML`.

    Args:
      learner: a Keras model mapping `[N, *features]` to `[N, outputs]`.
      inner_steps: inner steps during meta-training.
      eval_inner_steps: inner steps outside training; defaults to
        `inner_steps` (the learned rule is tuned to that many steps).
      first_order: treat the learner's gradients and losses as constants.
      hidden_units: width `H` of the first LSTM layer.
      **kwargs: `MAML`'s other options (`inner_clipnorm`, `per_task_gradients`, ...).

    Memory grows with `P · H` per task in flight.

    Example:

    ```python
    model = km.MetaLSTM(km.learners.conv4(ways=5), inner_steps=5, hidden_units=20)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    ```
    """

    def __init__(self, learner, inner_steps=5, eval_inner_steps=None, first_order=True,
                 hidden_units=20, **kwargs):
        arguments.reject("MetaLSTM", kwargs, {
            "inner_lr": "its input gate is the learning rate.",
            "inner_rule": "its rule is the LSTM; use `km.MAML(learner, inner_rule=...)` for "
                          "another rule."})
        super().__init__(learner, inner_steps=inner_steps, eval_inner_steps=eval_inner_steps,
                         first_order=first_order, inner_rule=LSTMUpdate(hidden_units), **kwargs)
        self.hidden_units = hidden_units

    def get_config(self):
        config = super().get_config()
        del config["inner_lr"], config["inner_rule"]
        return {**config, "hidden_units": self.hidden_units}
