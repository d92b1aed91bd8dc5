"""The inner loop shared by every gradient-based algorithm.

The learner is never mutated. Its weights are read once as tensors ("fast
weights") and the learner is evaluated as a pure function of them through
`keras.Layer.stateless_call`. Each inner step records its loss on a
`tf.GradientTape`; because the outer tape (opened by `MetaModel.train_step`)
watches those steps too, differentiating the query loss through the
adaptation gives the exact second-order meta-gradient. `first_order=True`
stops gradients through the inner gradients instead (FOMAML).

Algorithms differ only in the pieces passed to `adapt`: the update rule
(`keras_meta.update_rules`: SGD, learned per-parameter rates, per-step
rates, an LSTM, ...), which weights adapt, and the number of steps.
"""

import contextlib
import threading

import keras
import tensorflow as tf

from keras_meta import batch_norm, episode, leaky_relu, max_pooling

_settings = threading.local()


@contextlib.contextmanager
def divergence_checks(enabled):
    """Whether inner loops traced inside this context stop at a non-finite
    step (the default) or let non-finite values through, for evaluations
    that count diverged tasks instead of failing (`TaskEvaluator`)."""
    previous = getattr(_settings, "check_divergence", True)
    _settings.check_divergence = enabled
    try:
        yield
    finally:
        _settings.check_divergence = previous


def replace_layer_kernels(model):
    """Makes the layers of `model` whose TensorFlow kernels a meta-gradient
    cannot use as they are compute with keras_meta's: batch norm exact at
    every order (`batch_norm.exact_batch_norm`), max pooling exact under XLA
    (`max_pooling.exact_max_pooling`), leaky ReLU's gradient from its output
    (`leaky_relu.backward_from_outputs`). Values stay Keras's; once per layer."""
    batch_norm.exact_batch_norm(model)
    max_pooling.exact_max_pooling(model)
    leaky_relu.backward_from_outputs(model)


class FunctionalLearner:
    """A Keras model evaluated as a pure function of its weights.

    The model is called (`__call__`, so `training` reaches every layer even
    when the model's own `call` takes no `training` argument) inside a
    `keras.StatelessScope` that maps each variable to the given tensor.
    Batch norm runs in training mode (statistics of the batch it sees, as in
    the MAML reference), with statistics exact to second order
    (`batch_norm.exact_batch_norm`), and the moving statistics it would
    update are discarded, so no state leaks from one task to the next.
    """

    def __init__(self, model):
        self.model = model
        replace_layer_kernels(model)

    def initial_weights(self):
        """Current trainable and non-trainable values, as lists of tensors."""
        return (
            [tf.convert_to_tensor(v.value) for v in self.model.trainable_variables],
            [tf.convert_to_tensor(v.value) for v in self.model.non_trainable_variables],
        )

    def __call__(self, weights, non_trainable, x):
        """Runs the model on `x` `[N, *features]` with its trainable `weights`
        and `non_trainable` weights (lists of tensors) → `[N, *outputs]`, in
        the model's variable dtype: under a mixed policy the layers compute in
        float16/bfloat16 and the outputs, hence the inner loss, are float32."""
        mapping = list(zip(self.model.trainable_variables, weights))
        mapping += zip(self.model.non_trainable_variables, non_trainable)
        with keras.StatelessScope(state_mapping=mapping):
            outputs = self.model(x, training=True)
        return tf.cast(outputs, self.model.variable_dtype)


def batch_for_step(support_x, support_y, step, batch_size):
    """The `step`-th mini-batch of `batch_size` support examples, cycling
    through the support set in order (wrapping around its end)."""
    size = tf.shape(support_x)[0]
    indices = tf.math.floormod(step * batch_size + tf.range(batch_size), size)
    return tf.gather(support_x, indices), tf.gather(support_y, indices)


def adapt(forward, loss_fn, weights, support_x, support_y, *, steps, rule,
          first_order=False, adapted=None, batch_size=None, recompute=False,
          trajectory=False):
    """Runs `steps` gradient steps of `rule` on one task's support set.

    The steps run in a `tf.while_loop` whose step `k` is an int32 scalar
    tensor, so the traced graph does not grow with `steps`, and the
    meta-gradient (second order, through each step's inner tape) is the one
    of the steps written out. A single step runs as it is (a loop of one
    iteration would only add the loop's own work). Where every step's weights are needed
    (`trajectory=True`), the rule asks for a Python int step
    (`rule.unrolled`), or the steps are recomputed (`recompute=True`:
    TensorFlow's while-loop gradient cannot capture, in a recomputed step,
    the variables and eager tensors the step reads), the same steps are
    unrolled in Python instead, `k` a Python int, and the graph holds
    `steps` copies of a step.

    Args:
      forward: `forward(weights, x)` → predictions `[S, *outputs]`.
      loss_fn: `loss_fn(y, predictions)` → scalar inner loss.
      weights: list of tensors, the starting point (θ).
      support_x: `[S, *features]`.
      support_y: `[S]` labels or `[S, out]` targets.
      steps: number of inner steps (a Python int ≥ 0).
      rule: a built `keras_meta.update_rules.UpdateRule`; step `k` sets
        `weights[i] + updates[i]` from `rule.update(grads, state, weights,
        step=k, loss=loss)`, `grads[i]` being None for a weight that does not
        adapt (see `adapted`).
      first_order: if True, the inner gradients (and the loss the rule
        reads) are treated as constants.
      adapted: optional list of bools, one per weight; weights marked False
        get no gradient (ANIL adapts only the head).
      batch_size: if set, step `k` uses the `k`-th mini-batch of this many
        support examples (`batch_for_step`) instead of the whole support set.
      recompute: if True, no activation of an inner step is kept for the
        meta-gradient: each step's backward pass runs the step again
        (gradient checkpointing), so memory stays flat in `steps` for one
        more forward and backward pass of the support set per step. The
        gradient reaches the step's weights, the rule's state and the
        variables the rule reads in `update`.
      trajectory: if True, return the weights after every step, not only
        the last (the steps are then unrolled).

    Returns:
      The weights after `steps` steps (a list of tensors); with
      `trajectory=True`, a list of `steps + 1` weight lists, `[0]` being
      `weights` and `[k]` the weights after `k` steps.

    Raises (when the result is evaluated):
      FloatingPointError naming the inner step if a step's inner loss or the
      weights it produces are not finite (a diverging inner loop).
    """
    if adapted is None:
        adapted = [True] * len(weights)
    indices = [i for i, flag in enumerate(adapted) if flag]
    count = len(weights)

    def inner_step(current, state, step):
        x, y = support_x, support_y
        if batch_size is not None:
            x, y = batch_for_step(support_x, support_y, step, batch_size)
        moving = [current[i] for i in indices]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(moving)
            loss = loss_fn(y, forward(current, x))
        moving_grads = tape.gradient(loss, moving,
                                     unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grads = [None] * count
        for i, g in zip(indices, moving_grads):
            grads[i] = tf.stop_gradient(g) if first_order else g
        seen_loss = tf.stop_gradient(loss) if first_order else loss
        updates, state = rule.update(grads, state, current, step=step, loss=seen_loss)
        new = [w if u is None else w + u for w, u in zip(current, updates)]
        return loss, new, state

    def checked_step(current, state, step):
        if recompute:
            loss, current, state = recomputed(
                lambda w, s: inner_step(w, s, step), current, state)
        else:
            loss, current, state = inner_step(current, state, step)
        return _checked_step(loss, current, indices, step, steps), state

    current, state = list(weights), rule.init(list(weights))
    if trajectory or rule.unrolled or recompute or steps <= 1:
        path = [current]
        for step in range(steps):
            current, state = checked_step(current, state, step)
            path.append(current)
        return path if trajectory else current
    # One iteration at a time: running ahead lets the step-independent work of
    # later steps hold memory early (20-way conv4, 10 steps: 1250 MiB of tensors, not 560).
    _, current, _ = tf.while_loop(
        lambda step, *_: step < steps,
        lambda step, current, state: (step + 1, *checked_step(current, state, step)),
        (tf.constant(0), current, state), maximum_iterations=steps, parallel_iterations=1)
    return current


def recomputed(step_fn, weights, state):
    """`step_fn(weights, state)` → `(loss, new weights, new state)`, keeping
    none of its activations for the backward pass, which runs `step_fn` again.

    The gradient flows to `weights`, `state` and the variables `step_fn`
    reads. The recomputation waits for the incoming gradients, so it runs
    when the backward pass reaches this step and cannot be merged with the
    forward one.
    """
    count = len(weights)
    state_leaves = tf.nest.flatten(state)

    def split(values):
        return list(values[:count]), tf.nest.pack_sequence_as(state, list(values[count:]))

    @tf.custom_gradient
    def step(*inputs):
        loss, new, new_state = step_fn(*split(inputs))
        outputs = [loss, *new, *tf.nest.flatten(new_state)]

        def backward(*upstream, variables=()):
            upstream = [tf.zeros_like(o) if u is None else u for u, o in zip(upstream, outputs)]
            with tf.control_dependencies(upstream):
                again = [tf.identity(w) for w in inputs]
            with tf.GradientTape() as tape:
                tape.watch(again)
                loss_again, new_again, state_again = step_fn(*split(again))
            grads = tape.gradient([loss_again, *new_again, *tf.nest.flatten(state_again)],
                                  again + list(variables), output_gradients=upstream,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return grads[:len(inputs)], grads[len(inputs):]

        return outputs, backward

    loss, *rest = step(*weights, *state_leaves)
    new, new_state = rest[:count], tf.nest.pack_sequence_as(state, rest[count:])
    return loss, list(new), new_state


def _checked_step(loss, weights, indices, step, steps):
    """`weights` made to depend on a check that `loss` and the adapted weights
    are finite (unchanged inside `divergence_checks(False)`)."""
    if not getattr(_settings, "check_divergence", True):
        return weights
    message = (f"the inner loop diverged at inner step {{}} of {steps}: its inner loss "
               "or the weights it produced are not finite. Lower `inner_lr`, or clip the "
               "inner gradients (`inner_clipnorm`).")
    checked = episode.checked_finite([loss] + [weights[i] for i in indices], message,
                                     value=step + 1)[1:]
    weights = list(weights)
    for i, w in zip(indices, checked):
        weights[i] = w
    return weights
