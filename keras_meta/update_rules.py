"""Inner-loop update rules: what one inner step does with the gradients.

An update rule is a small object with the shape of an Optax transformation:

- `build(model, weights)`: creates the rule's meta-parameters (learned
  rates, ...) on `model` with `model.add_weight`, for the learner's trainable
  `weights` (variables); called once, when the model is built, so they are
  meta-trained by the compiled optimizer and saved with the model.
- `init(params)`: the rule's per-task state at the start of an adaptation, a
  list of tensors or of nested lists of tensors (momentum buffers, an LSTM's
  state, ...; `[]` if none).
- `update(grads, state, params, *, step, loss)` → `(updates, state)`: one
  step. `params` are the current weights (tensors), `grads` their inner
  gradients (None for a weight that does not adapt), `step` the 0-based step
  (an int32 scalar tensor inside the inner loop's `tf.while_loop`, a Python
  int where the steps are unrolled: index with `tf.gather`, branch with
  `tf.where`), `loss` the step's inner loss (a scalar at `params`). The inner
  loop then sets `params[i] + updates[i]` (None keeps `params[i]`); the
  state keeps its structure, dtypes and shapes from step to step.
- `unrolled`: False by default; a rule whose `update` needs `step` as a
  Python int sets it to True, and the inner loop then unrolls its steps in
  Python (a traced graph that grows with the number of steps).

Rules chain: `chain(ClipByNorm(1.0), LearnedRates(0.01))` clips, then scales
by learned rates; each rule reads the previous one's `updates` as its
`grads`. A rule reads its meta-parameters (`variable.value`) inside `update`,
so that recomputed inner steps (`recompute_inner_steps`) differentiate
them too. Every rule here has `get_config` and is registered with Keras, so a
model that uses it saves and reloads; a rule you write does the same with
`@keras.saving.register_keras_serializable()`.
"""

import abc

import keras
import numpy as np
import tensorflow as tf

from keras_meta import arguments


def as_dtype(value, dtype):
    """`value` as a tensor of `dtype`, without a float32 round trip for
    Python floats.

    Args:
      value: a Python number or a tensor.
      dtype: the dtype of the result.

    Returns:
      A tensor of `dtype`.

    Example:

    ```python
    km.update_rules.as_dtype(0.1, tf.float64)  # exactly 0.1 in float64
    ```
    """
    if isinstance(value, (int, float)):
        return tf.constant(value, dtype)
    return tf.cast(value, dtype)


class UpdateRule(abc.ABC):
    """Base class of inner-loop update rules (see the module docstring).

    Subclasses override `update`, and `build`, `init` and `get_config` when
    they have meta-parameters, per-task state or arguments. `update` receives
    `step` as an int32 scalar tensor; a rule that needs a Python int sets the
    class attribute `unrolled = True`.

    Example:

    Inner-loop momentum:

    ```python
    @keras.saving.register_keras_serializable()
    class Momentum(km.update_rules.UpdateRule):
        def __init__(self, learning_rate, momentum=0.9):
            self.learning_rate, self.momentum = learning_rate, momentum

        def init(self, params):
            return [tf.zeros_like(p) for p in params]

        def update(self, grads, state, params, *, step, loss):
            velocity = [v if g is None else self.momentum * v + g
                        for v, g in zip(state, grads)]
            updates = [None if g is None else -self.learning_rate * v
                       for v, g in zip(velocity, grads)]
            return updates, velocity

        def get_config(self):
            return {"learning_rate": self.learning_rate, "momentum": self.momentum}

    model = km.MAML(km.learners.mlp(), inner_rule=Momentum(0.1))
    ```
    """

    unrolled = False  # True: `update` needs a Python int `step` (the steps are unrolled)

    def build(self, model, weights):
        """Creates the rule's meta-parameters on `model`; `weights` are the
        learner's trainable variables. Default: none."""
        del model, weights

    def init(self, params):
        """The per-task state for `params` (a list of tensors): a list of tensors."""
        del params
        return []

    @abc.abstractmethod
    def update(self, grads, state, params, *, step, loss):
        """One inner step → `(updates, state)`; see the module docstring."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_meta")
class SGD(UpdateRule):
    """`updates = −learning_rate · g`: plain gradient descent (MAML's inner loop).

    Args:
      learning_rate: a number, or a tensor that broadcasts against each
        weight (a tensor is not saved with the model).

    Example:

    ```python
    model = km.MAML(km.learners.mlp(), inner_rule=km.update_rules.SGD(0.01))
    ```
    """

    def __init__(self, learning_rate):
        if not isinstance(learning_rate, (tf.Tensor, tf.Variable)):
            arguments.check_finite_number("learning_rate", learning_rate)
        self.learning_rate = learning_rate

    def update(self, grads, state, params, *, step, loss):
        return [None if g is None else -as_dtype(self.learning_rate, g.dtype) * g
                for g in grads], state

    def get_config(self):
        return {"learning_rate": self.learning_rate}


@keras.saving.register_keras_serializable(package="keras_meta")
class ClipByNorm(UpdateRule):
    """Rescales each weight's gradient to an L2 norm of at most `max_norm`
    (as a Keras optimizer's `clipnorm`); chain it before a rule that steps.

    Args:
      max_norm: a positive number, the largest L2 norm of each weight's gradient.

    Example:

    ```python
    rule = km.update_rules.chain(km.update_rules.ClipByNorm(1.0), km.update_rules.SGD(0.4))
    model = km.MAML(km.learners.mlp(), inner_rule=rule)
    ```
    """

    def __init__(self, max_norm):
        arguments.check_finite_number("max_norm", max_norm, above=0)
        self.max_norm = max_norm

    def update(self, grads, state, params, *, step, loss):
        return [None if g is None else tf.clip_by_norm(g, self.max_norm) for g in grads], state

    def get_config(self):
        return {"max_norm": self.max_norm}


@keras.saving.register_keras_serializable(package="keras_meta")
class LearnedRates(UpdateRule):
    """`updates = −α ⊙ g` with a meta-learned rate per element of every weight
    (Meta-SGD): `rates`, one variable `inner_rate_<i>` shaped like the
    learner's weight `i`, all starting at `initial_rate`.

    Args:
      initial_rate: the starting value of every rate.

    Example:

    ```python
    model = km.MAML(km.learners.mlp(), inner_rule=km.update_rules.LearnedRates(0.01))  # Meta-SGD
    ```
    """

    def __init__(self, initial_rate=0.01):
        arguments.check_finite_number("initial_rate", initial_rate)
        self.initial_rate = float(initial_rate)
        self.rates = None

    def build(self, model, weights):
        # A NumPy value keeps float64 rates exact (a Python float would pass through float32).
        self.rates = [
            model.add_weight(shape=v.shape, name=f"inner_rate_{i}", dtype=v.dtype,
                             initializer=keras.initializers.Constant(
                                 np.asarray(self.initial_rate, v.dtype)))
            for i, v in enumerate(weights)]

    def update(self, grads, state, params, *, step, loss):
        return [None if g is None else -r.value * g for r, g in zip(self.rates, grads)], state

    def get_config(self):
        return {"initial_rate": self.initial_rate}


@keras.saving.register_keras_serializable(package="keras_meta")
class PerStepRates(UpdateRule):
    """`updates = −α[i, k] · g` with one meta-learned rate per weight tensor
    `i` and per step `k` (MAML++'s LSLR): `rates` `[weights, steps]`, all
    starting at `initial_rate`. Steps past `steps` reuse the last column.

    Args:
      steps: the number of inner steps with their own rates, at least 1.
      initial_rate: the starting value of every rate.

    Example:

    ```python
    rule = km.update_rules.PerStepRates(steps=5, initial_rate=0.1)
    model = km.MAML(km.learners.mlp(), inner_rule=rule, inner_steps=5)
    ```
    """

    def __init__(self, steps, initial_rate=0.1):
        arguments.check_int("steps", steps, minimum=1)
        arguments.check_finite_number("initial_rate", initial_rate)
        self.steps = steps
        self.initial_rate = float(initial_rate)
        self.rates = None

    def build(self, model, weights):
        self.rates = model.add_weight(
            shape=(len(weights), self.steps), dtype=model.variable_dtype, name="inner_rates",
            initializer=keras.initializers.Constant(
                np.asarray(self.initial_rate, model.variable_dtype)))

    def update(self, grads, state, params, *, step, loss):
        rates = tf.unstack(tf.gather(self.rates.value, tf.minimum(step, self.steps - 1), axis=1))
        return [None if g is None else -tf.cast(r, g.dtype) * g
                for r, g in zip(rates, grads)], state

    def get_config(self):
        return {"steps": self.steps, "initial_rate": self.initial_rate}


@keras.saving.register_keras_serializable(package="keras_meta")
class Chain(UpdateRule):
    """Rules applied in order, each reading the previous one's updates as
    its gradients; build it with `chain(*rules)`.

    Args:
      rules: one or more `UpdateRule` objects, applied in order.

    Example:

    ```python
    rule = km.update_rules.Chain([km.update_rules.ClipByNorm(1.0), km.update_rules.SGD(0.4)])
    ```
    """

    def __init__(self, rules):
        rules = list(rules)
        bad = [r for r in rules if not isinstance(r, UpdateRule)]
        if not rules or bad:
            raise TypeError(f"`rules` must be one or more UpdateRule objects; received {bad or rules!r}.")
        self.rules = rules

    @property
    def unrolled(self):
        return any(rule.unrolled for rule in self.rules)

    def build(self, model, weights):
        for rule in self.rules:
            rule.build(model, weights)

    def init(self, params):
        return [list(rule.init(params)) for rule in self.rules]  # one state per rule

    def update(self, grads, state, params, *, step, loss):
        new_state = []
        for rule, part in zip(self.rules, state):
            grads, part = rule.update(grads, part, params, step=step, loss=loss)
            new_state.append(list(part))
        return grads, new_state

    def get_config(self):
        return {"rules": [keras.saving.serialize_keras_object(r) for r in self.rules]}

    @classmethod
    def from_config(cls, config):
        return cls([keras.saving.deserialize_keras_object(r) for r in config["rules"]])


def chain(*rules):
    """The rules applied in order (see `Chain`); one rule is returned as it is.

    Args:
      *rules: `UpdateRule` objects, applied in order.

    Returns:
      A `Chain` of the rules, or the one rule.

    Example:

    ```python
    rule = km.update_rules.chain(km.update_rules.ClipByNorm(1.0),
                                 km.update_rules.LearnedRates(0.01))
    model = km.MAML(km.learners.mlp(), inner_rule=rule)
    ```
    """
    return rules[0] if len(rules) == 1 and isinstance(rules[0], UpdateRule) else Chain(rules)


def check_rule(rule, name="inner_rule"):
    """Checks that `rule` is an `UpdateRule`, for a constructor that takes one.

    Args:
      rule: the object to check.
      name: the argument name the error message gives.

    Returns:
      `rule`.

    Raises:
      TypeError: if `rule` is not an `UpdateRule`.

    Example:

    ```python
    rule = km.update_rules.check_rule(km.update_rules.SGD(0.1), name="my_rule")
    ```
    """
    if not isinstance(rule, UpdateRule):
        raise TypeError(f"`{name}` must be a keras_meta.update_rules.UpdateRule; received "
                        f"{type(rule).__name__}.")
    return rule
