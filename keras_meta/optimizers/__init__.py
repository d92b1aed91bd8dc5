"""Learned optimizers: `LearnedOptimizer` (Andrychowicz et al., 2016), the
problem families it is meta-trained on, and its meta-training."""

from keras_meta.optimizers.learned import LearnedOptimizer, UpdateNetwork
from keras_meta.optimizers.meta_training import loss_curves, meta_train
from keras_meta.optimizers.problems import QuadraticProblems, SinusoidMLPProblems

__all__ = ["LearnedOptimizer", "UpdateNetwork", "meta_train", "loss_curves",
           "QuadraticProblems", "SinusoidMLPProblems"]
