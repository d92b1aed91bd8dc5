"""Meta-learning algorithms, one module per family."""

from keras_meta.algorithms.anil import ANIL
from keras_meta.algorithms.maml import FOMAML, MAML
from keras_meta.algorithms.maml_plus_plus import MAMLPlusPlus
from keras_meta.algorithms.meta_sgd import MetaSGD
from keras_meta.algorithms.reptile import Reptile
from keras_meta.algorithms.matching import MatchingNet
from keras_meta.algorithms.protonet import ProtoNet
from keras_meta.algorithms.relation import RelationMSE, RelationNet
from keras_meta.algorithms.leo import LEO
from keras_meta.algorithms.meta_lstm import MetaLSTM
from keras_meta.algorithms.snail import SNAIL

__all__ = ["MAML", "FOMAML", "Reptile", "MetaSGD", "ANIL", "MAMLPlusPlus"]
__all__ += ["ProtoNet", "MatchingNet", "RelationNet", "RelationMSE"]
__all__ += ["SNAIL", "LEO", "MetaLSTM"]
