"""keras_meta: meta-learning for Keras 3 on TensorFlow."""

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
