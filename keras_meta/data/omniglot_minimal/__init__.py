"""The `omniglot_minimal` TFDS builder; importing this package registers it."""

from keras_meta.data.omniglot_minimal.builder import ALPHABETS, OmniglotMinimal

__all__ = ["ALPHABETS", "OmniglotMinimal"]
