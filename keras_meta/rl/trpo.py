"""Trust-region policy optimisation's step (Schulman et al. 2015): conjugate
gradient on Hessian-vector products of the KL divergence, then a
backtracking line search under a maximum KL. Works on flat parameter
vectors; `MAMLRL` differentiates its objectives through the inner updates."""

import tensorflow as tf

from keras_meta import arguments


def conjugate_gradient(matvec, b, iterations=10, residual_tol=1e-10):
    """Approximately solves `A x = b` for a symmetric positive-definite `A`
    given only `matvec(v) = A v`, by at most `iterations` conjugate-gradient
    steps (stopping early when the squared residual falls below
    `residual_tol`).

    Args:
      matvec: `[D]` → `[D]`, the product with A (a Hessian-vector product).
      b: `[D]`.
      iterations: the maximum number of steps (D steps solve exactly, up
        to rounding).
      residual_tol: stop when `‖b − A x‖²` is below this.

    Returns:
      x `[D]`.

    Example:

    ```python
    a = tf.constant([[4.0, 1.0], [1.0, 3.0]])
    x = km.rl.conjugate_gradient(lambda v: tf.linalg.matvec(a, v), tf.constant([1.0, 2.0]))
    # x ≈ np.linalg.solve(a, [1, 2])
    ```
    """
    arguments.check_int("iterations", iterations, minimum=1)
    b = tf.convert_to_tensor(b)
    x = tf.zeros_like(b)
    r, p = b, b
    rr = tf.reduce_sum(r * r)

    def body(i, x, r, p, rr):
        ap = matvec(p)
        alpha = rr / (tf.reduce_sum(p * ap) + 1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        new_rr = tf.reduce_sum(r * r)
        p = r + (new_rr / (rr + 1e-30)) * p
        return i + 1, x, r, p, new_rr

    _, x, _, _, _ = tf.while_loop(
        lambda i, x, r, p, rr: tf.logical_and(i < iterations, rr > residual_tol),
        body, (tf.constant(0), x, r, p, rr))
    return x


def trpo_step(params, gradient, hvp, evaluate, max_kl=0.01, cg_iterations=10, damping=1e-5,
              backtrack_ratio=0.8, max_backtracks=15):
    """One TRPO step from `params`: maximise the surrogate subject to
    `KL ≤ max_kl`.

    The search direction is `s = (H + damping·I)⁻¹ g` by conjugate gradient,
    scaled to the trust region's edge, `β = √(2·max_kl / sᵀHs)`; the line
    search tries `params + backtrack_ratio^k · β s` for k = 0, 1, … and
    takes the first candidate that improves the surrogate and satisfies the
    KL constraint (measured, not approximated). If none does, the
    parameters stay where they were.

    Args:
      params: the current flat parameters `[D]`.
      gradient: the surrogate's gradient at `params`, `[D]`.
      hvp: `v` `[D]` → the KL's Hessian at `params` times `v`, `[D]`.
      evaluate: flat parameters `[D]` → `(surrogate, kl)`, scalars (kl from
        the policy at `params`).
      max_kl: δ, the trust region's radius in KL.
      cg_iterations: conjugate-gradient steps.
      damping: added to the Hessian's diagonal.
      backtrack_ratio: step shrink factor per line-search trial.
      max_backtracks: line-search trials.

    Returns:
      A dict: `params` (the new flat parameters), `accepted` (bool),
      `kl`, `improvement` (surrogate gain) and `surrogate` (before).

    Example:

    ```python
    h = tf.constant([[2.0, 0.0], [0.0, 1.0]])          # KL = ½ xᵀ h x around 0
    evaluate = lambda x: (tf.reduce_sum(x), 0.5 * tf.reduce_sum(x * tf.linalg.matvec(h, x)))
    step = km.rl.trpo_step(tf.zeros([2]), tf.ones([2]), lambda v: tf.linalg.matvec(h, v),
                           evaluate, max_kl=0.01)
    ```
    """
    arguments.check_finite_number("max_kl", max_kl, above=0)
    arguments.check_finite_number("damping", damping, minimum=0)
    arguments.check_finite_number("backtrack_ratio", backtrack_ratio, above=0)
    arguments.check_int("max_backtracks", max_backtracks, minimum=1)
    if backtrack_ratio >= 1:
        raise ValueError(f"`backtrack_ratio` must be in (0, 1); received {backtrack_ratio!r}.")
    direction = conjugate_gradient(lambda v: hvp(v) + damping * v, gradient, cg_iterations)
    shs = tf.reduce_sum(direction * hvp(direction))
    full_step = tf.sqrt(2.0 * max_kl / (shs + 1e-12)) * direction
    surrogate_before, _ = evaluate(params)

    def body(k, accepted, new_params, kl, improvement):
        candidate = params + tf.pow(backtrack_ratio, tf.cast(k, params.dtype)) * full_step
        value, candidate_kl = evaluate(candidate)
        gain = value - surrogate_before
        ok = tf.logical_and(tf.logical_and(gain > 0, candidate_kl <= max_kl),
                            tf.logical_and(tf.math.is_finite(value),
                                           tf.math.is_finite(candidate_kl)))
        return (k + 1, ok, tf.where(ok, candidate, new_params), tf.where(ok, candidate_kl, kl),
                tf.where(ok, gain, improvement))

    zero = tf.zeros([], params.dtype)
    _, accepted, new_params, kl, improvement = tf.while_loop(
        lambda k, accepted, *_: tf.logical_and(k < max_backtracks, tf.logical_not(accepted)),
        body, (tf.constant(0), tf.constant(False), params, zero, zero))
    return {"params": new_params, "accepted": accepted, "kl": kl, "improvement": improvement,
            "surrogate": surrogate_before}
