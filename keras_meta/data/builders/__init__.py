"""TFDS builders of the few-shot benchmarks; importing this package registers
`cifar_fs`, `fc100`, `cub`, `mini_imagenet` and `tiered_imagenet`."""

from keras_meta.data.builders.derived import CifarFs, Cub, Fc100
from keras_meta.data.builders.mini_imagenet import MiniImagenet
from keras_meta.data.builders.tiered_imagenet import TieredImagenet


