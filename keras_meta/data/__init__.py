"""Episode pipelines: the sinusoid family and few-shot image classification.

Pixel convention: images are float32; Omniglot is `[28, 28, 1]` in [0, 1]
with strokes = 1, background = 0 (see `km.data.omniglot_preprocess`).
Importing this package registers the offline TFDS dataset `omniglot_minimal`.
"""

from keras_meta.data.sampling import episodes
from keras_meta.data.omniglot import omniglot_episodes, omniglot_preprocess
from keras_meta.data.sinusoid import sinusoid_episodes
from keras_meta.data.labelled import labelled_batches, omniglot_batches

__all__ = ["episodes", "omniglot_episodes", "omniglot_preprocess", "sinusoid_episodes"]
__all__ += ["labelled_batches", "omniglot_batches"]
