"""The models `python -m keras_meta.train` builds: an algorithm name, a
dataset and the run's settings → a compiled `MetaModel`.

Backbones are the papers': conv4 (`filters` channels) on Omniglot, a 40-40
ReLU MLP on sinusoids. Outer optimizer: Adam.
"""

import keras

import keras_meta as km

GRADIENT_BASED = {
    "maml": km.MAML,
    "fomaml": km.FOMAML,
    "reptile": km.Reptile,
    "meta_sgd": km.MetaSGD,
    "anil": km.ANIL,
    "maml_plus_plus": km.MAMLPlusPlus,
}
CLASSIFIERS_ONLY = ("protonet", "matching", "relation", "multitask")
ALGORITHMS = (*GRADIENT_BASED, *CLASSIFIERS_ONLY)
# Gradient-based algorithms whose derivative order is a choice.
FIRST_ORDER_OPTIONAL = ("maml", "meta_sgd", "anil")


def build_model(config):
    """The compiled model of `config` (a `keras_meta.cli.config.Config`)."""
    model = _gradient_based(config) if config.algorithm in GRADIENT_BASED else _classifier(config)
    if config.classification:
        loss = (model.default_loss() if isinstance(model, km.RelationNet)
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        metrics = ["accuracy"]
    else:
        loss, metrics = "mse", None
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss,
                  metrics=metrics)
    return model


def _gradient_based(config):
    if config.classification:
        learner = km.learners.conv4(config.ways, filters=config.filters)
    else:
        learner = km.learners.mlp(hidden=(40, 40))
    loop = dict(inner_steps=config.inner_steps, eval_inner_steps=config.eval_inner_steps)
    if config.algorithm == "meta_sgd":
        loop["inner_lr_init"] = config.inner_lr
    else:
        loop["inner_lr"] = config.inner_lr
    if config.algorithm in FIRST_ORDER_OPTIONAL:
        loop["first_order"] = config.first_order
    return GRADIENT_BASED[config.algorithm](learner, **loop)


def _classifier(config):
    if config.algorithm == "protonet":
        return km.ProtoNet(km.learners.conv4_embedding(filters=config.filters))
    if config.algorithm == "matching":
        return km.MatchingNet(km.learners.conv4_embedding(filters=config.filters))
    if config.algorithm == "relation":
        return km.RelationNet(km.learners.conv4_embedding(
            filters=config.filters, pooled_blocks=2, flatten=False))
    return km.baselines.MultiTask(km.learners.conv4_embedding(filters=config.filters))
