"""`LearnedOptimizer`: "Learning to learn by gradient descent by gradient
descent" (Andrychowicz et al., 2016) as a Keras optimizer."""

import keras
import numpy as np
import tensorflow as tf

from keras_meta import coordinatewise, keras_internals

STATE_PARTS = ("h1", "c1", "h2", "c2")


def _check_positive(name, value, kinds=(int,)):
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        raise ValueError(f"`{name}` must be a number > 0; received {value!r}." if float in kinds
                         else f"`{name}` must be an int > 0; received {value!r}.")


class UpdateNetwork(keras.layers.Layer):
    """The coordinate-wise two-layer LSTM that maps each gradient coordinate
    to an update of that coordinate.

    Args:
      hidden_units: units of each of the two LSTMs.
      output_scale: multiplies the linear output (the update).
      **kwargs: as for any Keras layer (`name`, ...).

    `step(gradient, state)`: the gradient `[N]` is preprocessed to `[N, 2]`
    (`coordinatewise.preprocess`), read by two stacked LSTMs of
    `hidden_units`, and a linear output times `output_scale` is the update
    `[N]` (added to the parameters). `state` is `(h1, c1, h2, c2)`, each
    `[N, hidden_units]`. Its weights are created at construction.

    Example:

    ```python
    network = km.optimizers.UpdateNetwork(hidden_units=8)
    optimizer = km.optimizers.LearnedOptimizer(hidden_units=8,
                                               network_weights=network.get_weights())
    ```
    """

    def __init__(self, hidden_units=20, output_scale=0.1, **kwargs):
        _check_positive("hidden_units", hidden_units)
        _check_positive("output_scale", output_scale, (int, float))
        super().__init__(**kwargs)
        self.hidden_units = hidden_units
        self.output_scale = float(output_scale)
        self.first_lstm = coordinatewise.add_lstm_weights(self, 2, hidden_units, "lstm_1")
        self.second_lstm = coordinatewise.add_lstm_weights(self, hidden_units, hidden_units,
                                                           "lstm_2")
        self.output_kernel = self.add_weight(shape=(hidden_units,), initializer="glorot_uniform",
                                             name="output_kernel")
        self.output_bias = self.add_weight(shape=(), initializer="zeros", name="output_bias")
        self.built = True

    def initial_state(self, size):
        """Zero state for `size` coordinates: four `[size, hidden_units]` tensors."""
        return tuple(tf.zeros([size, self.hidden_units], self.variable_dtype) for _ in STATE_PARTS)

    def step(self, gradient, state):
        """`gradient` `[N]` and `state` → `(update [N], new state)`."""
        gradient = tf.cast(gradient, self.variable_dtype)
        h1, c1 = coordinatewise.lstm_step(coordinatewise.preprocess(gradient), state[:2],
                                          *(w.value for w in self.first_lstm))
        h2, c2 = coordinatewise.lstm_step(h1, state[2:], *(w.value for w in self.second_lstm))
        update = tf.linalg.matvec(h2, self.output_kernel.value) + self.output_bias.value
        return self.output_scale * update, (h1, c1, h2, c2)


@keras.saving.register_keras_serializable(package="keras_meta")
class LearnedOptimizer(keras.optimizers.Optimizer):
    """A Keras optimizer whose update rule is a meta-trained `UpdateNetwork`.

    Each variable's coordinates get `variable += learning_rate · update`,
    `update` from the network applied to the gradient coordinate and to that
    coordinate's LSTM state (optimizer variables `[*variable.shape,
    hidden_units]` × 4, saved with the optimizer's state). Meta-train the
    network with `keras_meta.optimizers.meta_train`; then
    `model.compile(optimizer=...)` uses it like any Keras optimizer. The
    network's weights are part of `get_config`, so `model.save` /
    `keras.saving.load_model` and `keras.optimizers.serialize` /
    `deserialize` restore the learned rule.

    Args:
      learning_rate: multiplies the network's update; 1.0 is the rule as
        meta-trained.
      hidden_units, output_scale: of the `UpdateNetwork`.
      network_weights: the network's weights (`network.get_weights()`, as
        `get_config` stores them); None keeps a fresh initialisation.
      name, **kwargs: as for any Keras optimizer (`clipnorm`, ...).

    Example:

    ```python
    optimizer = km.optimizers.LearnedOptimizer(hidden_units=8)
    km.optimizers.meta_train(optimizer, km.optimizers.QuadraticProblems(), iterations=2,
                             batch_size=4, unroll_steps=5, horizon=10)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.ones((8, 3)), np.ones((8, 1)), epochs=1, verbose=0)
    ```
    """

    def __init__(self, learning_rate=1.0, hidden_units=20, output_scale=0.1, network_weights=None,
                 name="learned_optimizer", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.network = UpdateNetwork(hidden_units, output_scale)
        if network_weights is not None:
            expected = [tuple(w.shape) for w in self.network.weights]
            received = [np.shape(w) for w in network_weights]
            if expected != received:
                raise ValueError(f"`network_weights` must have shapes {expected} (the network's "
                                 f"weights); received {received}.")
            self.network.set_weights([np.asarray(w) for w in network_weights])

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.lstm_states = [
            self.add_variable(shape=(*v.shape, self.network.hidden_units),
                              dtype=self.network.variable_dtype, name=f"{part}_{i}")
            for i, v in enumerate(variables) for part in STATE_PARTS]

    def update_step(self, gradient, variable, learning_rate):
        index = keras_internals.variable_index(self, variable)
        slots = self.lstm_states[len(STATE_PARTS) * index:len(STATE_PARTS) * (index + 1)]
        units = self.network.hidden_units
        state = tuple(tf.reshape(slot.value, [-1, units]) for slot in slots)
        update, state = self.network.step(tf.reshape(gradient, [-1]), state)
        update = tf.cast(tf.reshape(update, variable.shape), variable.dtype)
        self.assign_add(variable, tf.cast(learning_rate, variable.dtype) * update)
        for slot, value in zip(slots, state):
            self.assign(slot, tf.reshape(value, slot.shape))

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": self.network.hidden_units,
            "output_scale": self.network.output_scale,
            "network_weights": [w.tolist() for w in self.network.get_weights()],
        }
