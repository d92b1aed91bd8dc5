"""Meta-learning algorithms, one module per family."""

from keras_meta.algorithms.maml import FOMAML, MAML

__all__ = ["MAML", "FOMAML"]
