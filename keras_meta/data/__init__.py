"""Episode pipelines: the sinusoid family and few-shot image classification.

Pixel convention: images are float32; Omniglot is `[28, 28, 1]` in [0, 1]
with strokes = 1, background = 0 (see `km.data.omniglot_preprocess`).
Importing this package registers the offline TFDS dataset `omniglot_minimal` and the
benchmark builders `mini_imagenet`, `tiered_imagenet`, `cifar_fs`, `fc100` and `cub`
(package keras_meta/data/builders; episodes: `km.data.mini_imagenet_episodes` and the like).
"""

from keras_meta.data.sampling import episodes
from keras_meta.data.omniglot import omniglot_episodes, omniglot_preprocess
from keras_meta.data.sinusoid import sinusoid_episodes
from keras_meta.data.labelled import labelled_batches, omniglot_batches

__all__ = ["episodes", "omniglot_episodes", "omniglot_preprocess", "sinusoid_episodes"]
__all__ += ["labelled_batches", "omniglot_batches"]
from keras_meta.data.benchmarks import benchmark_episodes, benchmark_preprocess, train_statistics
from keras_meta.data.benchmarks import (cifar_fs_episodes, cub_episodes, fc100_episodes,
                                        mini_imagenet_episodes, tiered_imagenet_episodes)

__all__ += ["benchmark_episodes", "benchmark_preprocess", "train_statistics",
            "mini_imagenet_episodes", "tiered_imagenet_episodes", "cifar_fs_episodes",
            "fc100_episodes", "cub_episodes"]
from keras_meta.data.variable import variable_episodes
from keras_meta.data import augment

__all__ += ["variable_episodes", "augment"]
