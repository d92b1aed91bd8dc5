"""Whether the computation being traced is compiled with XLA.

Two computations take another path under XLA, where TensorFlow's lowering
of its fused kernels loses precision that a second-order meta-gradient
needs: batch norm runs element-wise (`batch_norm.normalize`) and max pooling
differentiates its backward pass in ordinary ops (`max_pooling`). A
`MetaModel` compiled with XLA (`jit_compile`) traces its steps and calls
inside `compiling(True)`.
"""

import contextlib
import threading

# Per thread (MirroredStrategy traces each replica in its own thread).
_STATE = threading.local()


@contextlib.contextmanager
def compiling(compiled):
    """Within this context, `is_compiling()` is `compiled`."""
    previous = is_compiling()
    _STATE.compiled = bool(compiled)
    try:
        yield
    finally:
        _STATE.compiled = previous


def is_compiling():
    """True inside `compiling(True)`."""
    return getattr(_STATE, "compiled", False)
