"""The models `python -m keras_meta.train` builds: an algorithm name, a
dataset and the run's settings → a compiled `MetaModel`.

Backbones are the papers': conv4 (`filters` channels) on Omniglot and the
image benchmarks (on their image shape, `Config.image_shape`), a 40-40
ReLU MLP on sinusoids. Outer optimizer: Adam with ε = 1e-8 (`outer_optimizer`;
clipped to `global_clipnorm` when set). SNAIL's sequence model is smaller than the paper's (which starts
learning later; `SNAIL_SEQUENCE`); LEO's latent codes have `LEO_LATENT_SIZE`
units. `finetune` pre-trains a linear-head classifier over every training
class (Omniglot) or the MLP on every point of the training tasks (sinusoid),
then fits each task's head (Omniglot) or the whole network (sinusoid) with
`eval_inner_steps` SGD steps of `inner_lr`.
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
# SNAIL (model-based), LEO (latent optimization) and MetaLSTM (a learned
# inner optimizer) are written for classification only, like the metric learners.
CLASSIFIERS_ONLY = ("protonet", "matching", "relation", "snail", "leo", "meta_lstm", "multitask")
ALGORITHMS = (*GRADIENT_BASED, *CLASSIFIERS_ONLY, "finetune")
# The metric learners, which classify any number of ways (`--train_ways`).
ANY_WAYS = ("protonet", "matching", "relation")
# The embedding networks of `--backbone`, and the algorithms that take any of them (an
# embedding of vectors; RelationNet's module needs conv4's feature maps).
BACKBONES = ("conv4", "resnet12")
ANY_BACKBONE = ("protonet", "matching")
REGRESSION = (*GRADIENT_BASED, "finetune")
# What a meta-RL dataset takes: MAML-RL (`km.rl.MAMLRL`), second- or first-order.
RL_ALGORITHMS = ("maml", "fomaml")
# MAML-RL's policy (MAML paper, section 5.3): two hidden layers of 100 ReLU units.
RL_POLICY_HIDDEN = (100, 100)
# Adam's ε in the MAML authors' TensorFlow code (TF 1's `AdamOptimizer`) and
# in PyTorch; Keras's default is 1e-7. Measured on the README's main job
# (benchmarks/accuracy_parity.py, seeds 0-2): 75.90% with 1e-7, 76.49% with 1e-8.
ADAM_EPSILON = 1e-8
# Gradient-based algorithms whose derivative order is a choice.
FIRST_ORDER_OPTIONAL = ("maml", "meta_sgd", "anil")
# Algorithms whose meta-gradient flows through the inner steps.
RECOMPUTABLE = ("maml", "fomaml", "meta_sgd", "anil", "maml_plus_plus", "meta_lstm")
# The inner-loop flags read by algorithms that are not gradient-based.
INNER_LOOP_FLAGS = {"finetune": ("inner_lr", "eval_inner_steps"), "leo": ("inner_steps",),
                    "meta_lstm": ("inner_steps",)}
# ProtoNet's distance unless `--distance` says otherwise: ProtoNet's default
# (Snell et al.'s choice, the squared Euclidean distance).
PROTONET_DISTANCE = km.algorithms.protonet.DISTANCES[0]
SNAIL_SEQUENCE = dict(filters=32, attention=((16, 16), (32, 32)))
LEO_LATENT_SIZE = 16


def build_model(config, num_classes=None):
    """The compiled model of `config` (a `keras_meta.cli.config.Config`);
    `num_classes`: the pre-training classes of `finetune` on Omniglot."""
    if config.rl:
        return _maml_rl(config)
    if config.algorithm in GRADIENT_BASED:
        model = _gradient_based(config)
    elif config.algorithm == "finetune":
        model = _finetune(config, num_classes)
    else:
        model = _classifier(config)
    _compile(model, config)
    return model


def rl_family(config):
    """The `keras_meta.rl.TaskFamily` of a meta-RL `config` (the cheetahs
    need Gymnasium and MuJoCo: an `ImportError` says how to install them)."""
    if config.dataset == "navigation_2d":
        return km.rl.Navigation2D(horizon=config.horizon)
    if config.dataset == "half_cheetah_vel":
        return km.rl.HalfCheetahVelocity(horizon=config.horizon)
    return km.rl.HalfCheetahDirection(horizon=config.horizon)


def _maml_rl(config):
    """MAML-RL with the paper's policy and TRPO outer step; compiled with
    Keras's default optimizer, which TRPO does not step (it counts the
    meta-iterations that a resumed run starts from)."""
    family = rl_family(config)
    policy = km.rl.mlp_policy(family.observation_dim, family.action_dim,
                              hidden=RL_POLICY_HIDDEN, seed=config.seed)
    model = km.rl.MAMLRL(policy, family, inner_lr=config.inner_lr,
                         inner_steps=config.inner_steps, eval_inner_steps=config.eval_inner_steps,
                         num_trajectories=config.trajectories, first_order=config.first_order,
                         max_kl=config.max_kl, estimator=config.estimator or "dice",
                         seed=config.seed)
    model.compile()
    return model


def evaluation_model(config, model):
    """The model that is tested: `model`, except for `finetune` on sinusoids,
    whose fine-tuning runs on MAML's inner loop (the same SGD steps) so that
    the test reports the loss after each step."""
    if config.algorithm != "finetune" or config.classification:
        return model
    tuned = km.MAML(model.learner, inner_lr=config.inner_lr, inner_steps=1,
                    eval_inner_steps=config.eval_inner_steps)
    _compile(tuned, config)
    return tuned


def _compile(model, config):
    if config.classification:
        loss = (model.default_loss() if isinstance(model, km.RelationNet)
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        metrics = ["accuracy"]
    else:
        loss, metrics = "mse", None
    model.compile(optimizer=outer_optimizer(config.learning_rate, config.global_clipnorm),
                  loss=loss, metrics=metrics)


def outer_optimizer(learning_rate, global_clipnorm=None):
    """The CLI's meta-optimizer: Adam with `ADAM_EPSILON`, optionally clipped."""
    return keras.optimizers.Adam(learning_rate, epsilon=ADAM_EPSILON,
                                 global_clipnorm=global_clipnorm)


def _embedding(config, **kwargs):
    if config.backbone == "resnet12":
        return km.learners.resnet12(input_shape=config.image_shape)
    return km.learners.conv4_embedding(filters=config.filters, input_shape=config.image_shape,
                                       **kwargs)


def _conv4(config):
    return km.learners.conv4(config.ways, filters=config.filters, input_shape=config.image_shape)


def _finetune(config, num_classes):
    tuning = dict(steps=config.eval_inner_steps, learning_rate=config.inner_lr)
    if config.classification:
        return km.baselines.FineTune(_embedding(config),
                                     num_classes=num_classes, **tuning)
    return km.baselines.FineTune(km.learners.mlp(hidden=(40, 40)), **tuning)


def _gradient_based(config):
    if config.classification:
        learner = _conv4(config)
    else:
        learner = km.learners.mlp(hidden=(40, 40))
    loop = dict(inner_steps=config.inner_steps, eval_inner_steps=config.eval_inner_steps)
    if config.algorithm == "meta_sgd":
        loop["inner_lr_init"] = config.inner_lr
    else:
        loop["inner_lr"] = config.inner_lr
    if config.algorithm in FIRST_ORDER_OPTIONAL:
        loop["first_order"] = config.first_order
    if config.algorithm in RECOMPUTABLE:
        loop["recompute_inner_steps"] = config.recompute_inner_steps
    return GRADIENT_BASED[config.algorithm](learner, **loop)


def _classifier(config):
    if config.algorithm == "protonet":
        return km.ProtoNet(_embedding(config), distance=config.distance,
                           learn_scale=config.learn_scale,
                           refinement_steps=config.refinement_steps,
                           eval_refinement_steps=config.eval_refinement_steps)
    if config.algorithm == "matching":
        return km.MatchingNet(_embedding(config))
    if config.algorithm == "relation":
        return km.RelationNet(_embedding(config, pooled_blocks=2, flatten=False))
    if config.algorithm == "snail":
        return km.SNAIL(_embedding(config), ways=config.ways,
                        shots=config.shots, **SNAIL_SEQUENCE)
    if config.algorithm == "leo":
        return km.LEO(_embedding(config),
                      latent_size=LEO_LATENT_SIZE, inner_steps=config.inner_steps,
                      finetune_steps=config.inner_steps, seed=config.seed)
    if config.algorithm == "meta_lstm":
        return km.MetaLSTM(_conv4(config),
                           inner_steps=config.inner_steps,
                           recompute_inner_steps=config.recompute_inner_steps)
    return km.baselines.MultiTask(_embedding(config))
