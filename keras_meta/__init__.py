"""keras_meta: meta-learning for Keras 3 on TensorFlow."""

import os

# TensorFlow runs its oneDNN CPU kernels by default only on CPUs with AVX-512
# VNNI/BF16 or AMX; PyTorch runs oneDNN on every x86 CPU. Asked for here, before
# TensorFlow is first imported, they make a meta-training step on an AVX2 CPU
# 1.66 times faster (README, Performance). A value the user set is kept.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from keras_meta import data, learners, stats, update_rules
from keras_meta.algorithms import ANIL, FOMAML, MAML, MAMLPlusPlus, MetaSGD, Reptile
from keras_meta.algorithms import MatchingNet, ProtoNet, RelationNet
from keras_meta.algorithms import LEO, SNAIL, MetaLSTM
from keras_meta import optimizers
from keras_meta import rl
from keras_meta import baselines
from keras_meta import callbacks, evaluation, masking, plot
from keras_meta.meta_model import MetaModel

__version__ = "0.1.0"

__all__ = ["MetaModel", "MAML", "FOMAML", "Reptile", "MetaSGD", "ANIL", "MAMLPlusPlus", "data", "learners", "stats",
           "update_rules"]
__all__ += ["ProtoNet", "MatchingNet", "RelationNet", "baselines"]
__all__ += ["callbacks", "evaluation", "masking", "plot"]
__all__ += ["SNAIL", "LEO", "MetaLSTM", "optimizers"]
__all__ += ["rl"]
