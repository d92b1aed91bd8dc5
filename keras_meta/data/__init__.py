"""Episode pipelines: the sinusoid family and few-shot image classification."""

from keras_meta.data.sinusoid import sinusoid_episodes

__all__ = ["sinusoid_episodes"]
