"""Meta-training a `LearnedOptimizer` by truncated back-propagation through
unrolled optimisation, and loss curves of any Keras optimizer on a problem
family."""

import keras
import numpy as np
import tensorflow as tf

from keras_meta import arguments, coordinatewise
from keras_meta.optimizers.learned import LearnedOptimizer


def loss_and_gradients(family, data, params):
    """Each problem's loss `[B]` at `params` and its gradients (one per tensor of `params`)."""
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = family.loss(data, params)
        total = tf.reduce_sum(loss)
    return loss, tape.gradient(total, params)


def unroll(network, family, data, params, state, steps):
    """Optimises a batch of problems for `steps` steps with `network`.

    The steps run in one `tf.while_loop`, so the graph does not grow with
    `steps`. The optimizee's gradients enter the network as constants (the
    paper drops second derivatives); the losses depend on the network through
    the parameters it produced.

    Returns:
      `(losses, params, state)`: the losses after each step `[steps, B]`, and
      the final parameters and network state.
    """
    loss, grads = loss_and_gradients(family, data, params)

    def step(t, params, state, grads, losses):
        update, state = network.step(tf.stop_gradient(coordinatewise.flatten(grads)), state)
        theta = coordinatewise.flatten(params)
        params = coordinatewise.unflatten(theta + tf.cast(update, theta.dtype), params)
        loss, grads = loss_and_gradients(family, data, params)
        return t + 1, params, state, grads, losses.write(t, loss)

    losses = tf.TensorArray(loss.dtype, size=steps, element_shape=loss.shape)
    _, params, state, _, losses = tf.while_loop(
        lambda t, *_: t < steps, step, (tf.constant(0), params, tuple(state), grads, losses))
    return losses.stack(), params, state


def meta_train(optimizer, problems, iterations, *, batch_size=32, unroll_steps=20, horizon=100,
               meta_optimizer=None, seed=0):
    """Meta-trains `optimizer.network` (a `LearnedOptimizer`'s) in place.

    Each iteration unrolls `unroll_steps` steps of the network on a batch of
    `batch_size` problems of each family and takes one step of
    `meta_optimizer` on the meta-loss: the mean over steps, problems and
    families of each problem's loss divided by its loss at θ_0 (so families
    and problems of different scales weigh the same; the paper sums raw
    losses). Parameters and network state carry over to the next truncation
    without gradient; every `horizon` steps the problems are new (family `k`
    of segment `i` has seed `(seed, i · len(families) + k)`).

    Args:
      optimizer: a `LearnedOptimizer`.
      problems: a problem family (`QuadraticProblems`, ...) or a list of them.
      iterations: truncations to train on.
      batch_size: problems per family and truncation.
      unroll_steps: steps per truncation.
      horizon: steps per problem, a multiple of `unroll_steps`.
      meta_optimizer: Keras optimizer of the network; default `Adam(1e-3)`.
      seed: int seed of the training problems.

    Returns:
      The meta-loss of each iteration, a list of floats.

    Example:

    ```python
    optimizer = km.optimizers.LearnedOptimizer(hidden_units=8)
    losses = km.optimizers.meta_train(
        optimizer, [km.optimizers.QuadraticProblems(), km.optimizers.SinusoidMLPProblems()],
        iterations=2, batch_size=4, unroll_steps=5, horizon=10)
    ```
    """
    if not isinstance(optimizer, LearnedOptimizer):
        raise ValueError(f"`optimizer` must be a LearnedOptimizer; received "
                         f"{type(optimizer).__name__}.")
    families = list(problems) if isinstance(problems, (list, tuple)) else [problems]
    if not families or not all(hasattr(f, "sample") and hasattr(f, "loss") for f in families):
        raise ValueError("`problems` must be a problem family (with `sample` and `loss`) or a "
                         f"non-empty list of them; received {problems!r}.")
    arguments.check_int("iterations", iterations, minimum=0)
    arguments.check_int("batch_size", batch_size, minimum=1)
    arguments.check_int("unroll_steps", unroll_steps, minimum=1)
    arguments.check_int("horizon", horizon, minimum=1)
    if horizon % unroll_steps:
        raise ValueError(f"`horizon` must be a multiple of `unroll_steps` ({unroll_steps}); "
                         f"received {horizon}.")
    arguments.check_int("seed", seed)
    network = optimizer.network
    meta_optimizer = meta_optimizer or keras.optimizers.Adam(1e-3)

    def new_problems(segment):
        runs = []
        for k, family in enumerate(families):
            data, params = family.sample(batch_size, [seed, segment * len(families) + k])
            size = sum(int(np.prod(p.shape)) for p in params)
            runs.append((data, params, network.initial_state(size), family.loss(data, params)))
        return runs

    @tf.function
    def train(runs):
        carried = []
        with tf.GradientTape() as tape:
            meta_loss = 0.0
            for family, (data, params, state, initial_loss) in zip(families, runs):
                losses, params, state = unroll(network, family, data, params, state, unroll_steps)
                meta_loss += tf.reduce_mean(losses / initial_loss) / len(families)
                carried.append((data, [tf.stop_gradient(p) for p in params],
                                tuple(tf.stop_gradient(s) for s in state), initial_loss))
        grads = tape.gradient(meta_loss, network.trainable_variables)
        meta_optimizer.apply(grads, network.trainable_variables)
        return meta_loss, carried

    truncations = horizon // unroll_steps
    history = []
    for iteration in range(iterations):
        if iteration % truncations == 0:
            runs = new_problems(iteration // truncations)
        meta_loss, runs = train(runs)
        history.append(float(meta_loss))
    return history


def loss_curves(optimizer, family, steps, batch_size=100, seed=(1, 0)):
    """Each problem's loss along `steps` steps of a Keras optimizer.

    `batch_size` problems of `family` (seed `seed`) become `keras.Variable`s
    that a fresh copy of `optimizer` (rebuilt from its config, so `optimizer`
    itself is left untouched) updates with `apply`, as in `fit`.

    Args:
      optimizer: a Keras optimizer (a `LearnedOptimizer` or any other).
      family: a problem family (`QuadraticProblems`, ...).
      steps: optimizer steps.
      batch_size: problems of `family`.
      seed: the problems' seed, a pair of ints.

    Returns:
      `[steps + 1, batch_size]` NumPy losses, row `t` after `t` steps.

    Example:

    ```python
    problems = km.optimizers.QuadraticProblems()
    sgd = km.optimizers.loss_curves(keras.optimizers.SGD(0.01), problems, steps=20, batch_size=10)
    sgd.mean(axis=1)  # the mean loss after 0..20 steps
    ```
    """
    arguments.check_int("steps", steps, minimum=0)
    optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    data, params = family.sample(batch_size, seed)
    variables = [keras.Variable(p) for p in params]

    @tf.function
    def step():
        values = [v.value for v in variables]
        loss, grads = loss_and_gradients(family, data, values)
        optimizer.apply(grads, variables)
        return loss

    losses = [step() for _ in range(steps)]
    losses.append(family.loss(data, [v.value for v in variables]))
    return np.stack([loss.numpy() for loss in losses])
