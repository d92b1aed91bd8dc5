"""An independent NumPy implementation of a tanh MLP with mean-squared-error,
its hand-written backward pass, and MAML's inner loop — the reference the
gradient tests compare keras_meta against."""

import numpy as np


def forward(params, x):
    """params: [W1, b1, ..., Wn, bn]; tanh on hidden layers. Returns (out, activations)."""
    activations = [x]
    h = x
    layers = len(params) // 2
    for i in range(layers):
        z = h @ params[2 * i] + params[2 * i + 1]
        h = np.tanh(z) if i < layers - 1 else z
        activations.append(h)
    return h, activations


def mse(params, x, y):
    out, _ = forward(params, x)
    return np.mean((out - y) ** 2)


def mse_grad(params, x, y):
    """Gradient of `mse` with respect to every parameter, by backpropagation."""
    out, activations = forward(params, x)
    delta = 2.0 * (out - y) / out.size
    grads = [None] * len(params)
    layers = len(params) // 2
    for i in reversed(range(layers)):
        grads[2 * i] = activations[i].T @ delta
        grads[2 * i + 1] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ params[2 * i].T) * (1.0 - activations[i] ** 2)
    return grads


def adapt(params, x, y, lr, steps, adapted=None, batch_size=None):
    """`steps` SGD steps on (x, y). `lr`: a number, one array per parameter
    (Meta-SGD), or a function of the step returning either (MAML++);
    `adapted`: indices of the parameters that move (default all);
    `batch_size`: step k uses examples k·b … k·b + b − 1 (cyclically)."""
    moving = range(len(params)) if adapted is None else adapted
    for step in range(steps):
        rates = lr(step) if callable(lr) else lr
        rates = rates if isinstance(rates, (list, tuple)) else [rates] * len(params)
        xb, yb = x, y
        if batch_size is not None:
            rows = (step * batch_size + np.arange(batch_size)) % len(x)
            xb, yb = x[rows], y[rows]
        grads = mse_grad(params, xb, yb)
        params = [p - rates[i] * grads[i] if i in moving else p for i, p in enumerate(params)]
    return params


def meta_loss(params, tasks, lr, steps, adapted=None):
    """Mean over tasks of the query MSE after `steps` inner SGD steps."""
    return np.mean([mse(adapt(params, sx, sy, lr, steps, adapted), qx, qy)
                    for sx, sy, qx, qy in tasks])


def finite_difference(f, arrays, eps=1e-6):
    """Central finite differences of the scalar `f(arrays)` for every element."""
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            shifted = [b.copy() for b in arrays]
            shifted[k][idx] = a[idx] + eps
            plus = f(shifted)
            shifted[k][idx] = a[idx] - eps
            g[idx] = (plus - f(shifted)) / (2 * eps)
        grads.append(g)
    return grads


def finite_difference_grad(params, tasks, lr, steps, adapted=None):
    """Finite-difference meta-gradient with respect to the initial weights."""
    return finite_difference(lambda p: meta_loss(p, tasks, lr, steps, adapted), params)
