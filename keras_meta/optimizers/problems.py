"""Families of optimisation problems a learned optimizer is meta-trained and
tested on.

A family samples a batch of `B` independent problems with `sample(batch_size,
seed)` → `(data, params)`: `data` a dict of tensors, `params` a list of
tensors with leading axis `B` (the starting point θ_0). `loss(data, params)`
gives each problem's loss `[B]`; a problem's loss depends on its own slice
of `params` only, so the gradient of the summed loss is every problem's own
gradient. Sampling is stateless: the same `seed` (a pair of ints) gives the
same problems.
"""

import math

import tensorflow as tf

from keras_meta import arguments


def _keys(seed, count):
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=count)


class QuadraticProblems:
    """`f(θ) = ‖Wθ − y‖²` with `W` `[dim, dim]` and `y` `[dim]` drawn i.i.d.
    from N(0, 1) and `θ_0 ~ N(0, 0.01²)` (Andrychowicz et al. 2016, §3.1).

    Args:
      dim: the dimension of θ.

    Example:

    ```python
    curves = km.optimizers.loss_curves(keras.optimizers.Adam(0.1),
                                       km.optimizers.QuadraticProblems(dim=10), steps=10)
    ```
    """

    def __init__(self, dim=10):
        arguments.check_int("dim", dim, minimum=1)
        self.dim = dim

    def sample(self, batch_size, seed):
        keys = _keys(seed, 3)
        data = {
            "w": tf.random.stateless_normal([batch_size, self.dim, self.dim], keys[0]),
            "y": tf.random.stateless_normal([batch_size, self.dim], keys[1]),
        }
        return data, [0.01 * tf.random.stateless_normal([batch_size, self.dim], keys[2])]

    def loss(self, data, params):
        residual = tf.einsum("bij,bj->bi", data["w"], params[0]) - data["y"]
        return tf.reduce_sum(tf.square(residual), axis=-1)


class SinusoidMLPProblems:
    """Fitting one sinusoid `y = A sin(x − φ)` (`A ~ U[0.1, 5]`, `φ ~ U[0, π]`,
    `points` inputs `x ~ U[−5, 5]`, the MAML family) with a ReLU MLP
    `1 → hidden → 1`; Glorot-uniform kernels, zero biases; the loss is the
    mean squared error on the points.

    Args:
      hidden: widths of the MLP's hidden layers.
      points: inputs `x` per problem.

    Example:

    ```python
    curves = km.optimizers.loss_curves(keras.optimizers.Adam(0.01),
                                       km.optimizers.SinusoidMLPProblems(hidden=(20,)), steps=10)
    ```
    """

    def __init__(self, hidden=(20,), points=20):
        if not isinstance(hidden, (list, tuple)) or not all(
                isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
            raise ValueError(f"`hidden` must be a list of ints > 0; received {hidden!r}.")
        arguments.check_int("points", points, minimum=1)
        self.widths = [1, *hidden, 1]
        self.points = points

    def sample(self, batch_size, seed):
        keys = _keys(seed, 3 + len(self.widths) - 1)
        amplitude = tf.random.stateless_uniform([batch_size, 1, 1], keys[0], 0.1, 5.0)
        phase = tf.random.stateless_uniform([batch_size, 1, 1], keys[1], 0.0, math.pi)
        x = tf.random.stateless_uniform([batch_size, self.points, 1], keys[2], -5.0, 5.0)
        params = []
        for key, fan_in, fan_out in zip(keys[3:], self.widths[:-1], self.widths[1:]):
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            params += [tf.random.stateless_uniform([batch_size, fan_in, fan_out], key, -limit, limit),
                       tf.zeros([batch_size, fan_out])]
        return {"x": x, "y": amplitude * tf.sin(x - phase)}, params

    def loss(self, data, params):
        h = data["x"]
        layers = len(params) // 2
        for i in range(layers):
            h = tf.einsum("bki,bio->bko", h, params[2 * i]) + params[2 * i + 1][:, None]
            if i < layers - 1:
                h = tf.nn.relu(h)
        return tf.reduce_mean(tf.square(h - data["y"]), axis=[1, 2])
