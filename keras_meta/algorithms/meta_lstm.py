"""The LSTM meta-learner (Ravi & Larochelle, "Optimization as a model for
few-shot learning", 2017)."""

import keras
import numpy as np
import tensorflow as tf

from keras_meta import adaptation, coordinatewise
from keras_meta.algorithms.maml import MAML

# The learner's weights, flattened, are followed in the inner loop's weight
# list by the meta-learner's state: h and c of its first layer `[P, H]` and
# the previous forget and input gates `[P]`.
STATE_SIZE = 4


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
    Each step runs on the whole support set with the compiled loss, through
    `keras_meta.adaptation.adapt`; batch norm as in `MAML`.

    Args:
      learner: a Keras model mapping `[N, *features]` to `[N, outputs]`.
      inner_steps: inner steps during meta-training.
      eval_inner_steps: inner steps outside training; defaults to
        `inner_steps` (the learned rule is tuned to that many steps).
      first_order: treat the learner's gradients and losses as constants.
      hidden_units: width `H` of the first LSTM layer.
      **kwargs: `MAML`'s other options (`inner_clipnorm`, `per_task_gradients`, ...).

    Memory grows with `P · H` per task in flight.
    """

    def __init__(self, learner, inner_steps=5, eval_inner_steps=None, first_order=True,
                 hidden_units=20, **kwargs):
        if isinstance(hidden_units, bool) or not isinstance(hidden_units, int) or hidden_units < 1:
            raise ValueError(f"`hidden_units` must be an int >= 1; received {hidden_units!r}.")
        kwargs.pop("inner_lr", None)  # the input gate is the learning rate
        super().__init__(learner, inner_lr=0.0, inner_steps=inner_steps,
                         eval_inner_steps=eval_inner_steps, first_order=first_order, **kwargs)
        self.hidden_units = hidden_units

    def build(self, input_shape):
        super().build(input_shape)
        units = self.hidden_units
        self.lstm_weights = coordinatewise.add_lstm_weights(self, 4, units, "lstm")
        small = keras.initializers.RandomUniform(-0.01, 0.01)
        self.forget_kernel = self.add_weight(shape=(units + 2,), initializer=small,
                                             name="forget_kernel")
        self.forget_bias = self.add_weight(
            shape=(), initializer=keras.initializers.RandomUniform(4.0, 6.0), name="forget_bias")
        self.input_kernel = self.add_weight(shape=(units + 2,), initializer=small,
                                            name="input_kernel")
        self.input_bias = self.add_weight(
            shape=(), initializer=keras.initializers.RandomUniform(-5.0, -4.0), name="input_bias")

    def inner_update(self):
        """The meta-learner's update `update(weights, grads, step, loss)`:
        `weights` are the learner's weights followed by the meta-learner's
        state (see `adapt`)."""
        lstm = [w.value for w in self.lstm_weights]
        forget_kernel, forget_bias = self.forget_kernel.value, self.forget_bias.value
        input_kernel, input_bias = self.input_kernel.value, self.input_bias.value

        def gate(h, theta, previous, kernel, bias):
            return tf.sigmoid(tf.linalg.matvec(tf.concat(
                [h, theta[:, None], previous[:, None]], axis=-1), kernel) + bias)

        def update(weights, grads, step, loss):
            del step
            learner, (h, c, forget, input_gate) = weights[:-STATE_SIZE], weights[-STATE_SIZE:]
            theta = coordinatewise.flatten(learner)
            gradient = coordinatewise.flatten(grads[:-STATE_SIZE])
            if self.first_order:
                loss = tf.stop_gradient(loss)
            loss_inputs = coordinatewise.preprocess(tf.cast(loss, theta.dtype)[None])
            inputs = tf.concat([coordinatewise.preprocess(gradient),
                                tf.broadcast_to(loss_inputs, [tf.shape(theta)[0], 2])], axis=-1)
            h, c = coordinatewise.lstm_step(inputs, (h, c), *lstm)
            forget = gate(h, theta, forget, forget_kernel, forget_bias)
            input_gate = gate(h, theta, input_gate, input_kernel, input_bias)
            theta = forget * theta - input_gate * gradient
            return [*coordinatewise.unflatten(theta, learner), h, c, forget, input_gate]

        return update

    def adapt(self, weights, frozen, support_x, support_y, steps, batch_size=None):
        """`MAML.adapt` with the meta-learner's state carried along the
        learner's weights (as weights that do not adapt); returns the
        trajectory of the learner's weights only."""
        size = sum(int(np.prod(w.shape)) for w in weights)
        dtype = weights[0].dtype
        state = [tf.zeros([size, self.hidden_units], dtype), tf.zeros([size, self.hidden_units], dtype),
                 tf.zeros([size], dtype), tf.zeros([size], dtype)]
        learner_weights = len(weights)
        trajectory = adaptation.adapt(
            lambda w, x: self.functional_learner(w[:learner_weights], frozen, x),
            self.inner_loss,
            [*weights, *state],
            support_x,
            support_y,
            steps=steps,
            update=self.step_update(),
            first_order=self.first_order,
            adapted=[True] * learner_weights + [False] * STATE_SIZE,
            batch_size=batch_size,
            clipnorm=self.inner_clipnorm,
            update_sees_loss=True,
            recompute=self.recompute_inner_steps,
        )
        return [w[:learner_weights] for w in trajectory]

    def get_config(self):
        config = super().get_config()
        del config["inner_lr"]
        return {**config, "hidden_units": self.hidden_units}
