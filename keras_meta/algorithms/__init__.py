"""Meta-learning algorithms, one module per family."""

from keras_meta.algorithms.maml import FOMAML, MAML
from keras_meta.algorithms.matching import MatchingNet
from keras_meta.algorithms.protonet import ProtoNet
from keras_meta.algorithms.relation import RelationMSE, RelationNet

__all__ = ["MAML", "FOMAML"]
__all__ += ["ProtoNet", "MatchingNet", "RelationNet", "RelationMSE"]
