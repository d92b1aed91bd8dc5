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


def adapt(params, x, y, lr, steps):
    for _ in range(steps):
        params = [p - lr * g for p, g in zip(params, mse_grad(params, x, y))]
    return params


def meta_loss(params, tasks, lr, steps):
    """Mean over tasks of the query MSE after `steps` inner SGD steps."""
    return np.mean([mse(adapt(params, sx, sy, lr, steps), qx, qy) for sx, sy, qx, qy in tasks])


def finite_difference_grad(params, tasks, lr, steps, eps=1e-6):
    """Central finite differences of `meta_loss`, element by element."""
    grads = []
    for k, p in enumerate(params):
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            shifted = [q.copy() for q in params]
            shifted[k][idx] = p[idx] + eps
            plus = meta_loss(shifted, tasks, lr, steps)
            shifted[k][idx] = p[idx] - eps
            minus = meta_loss(shifted, tasks, lr, steps)
            g[idx] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads
