"""From command-line values to the settings of one run.

Precedence: a flag given on the command line, then the preset (a given flag
that contradicts the preset is an error, except `presets.OVERRIDABLE`), then the
dataset's default (`keras_meta.cli.presets`).
"""

from __future__ import annotations

import dataclasses

from keras_meta.cli import models, presets
from keras_meta.data import benchmarks as km_benchmarks

# The one-shot recipe's settings (presets may set them) and their values when
# neither a flag nor the preset gives one (image_size None: the dataset's).
ONE_SHOT_DEFAULTS = dict(train_within_alphabet=False, image_size=None, augment="none",
                         learn_scale=False, refinement_steps=0, eval_refinement_steps=None,
                         within_alphabet_trials=0, time_budget=None, curve_points=0)
ONE_SHOT = tuple(ONE_SHOT_DEFAULTS)
# Which of them apply only to Omniglot's episodes, only to ProtoNet.
OMNIGLOT_ONLY = ("train_within_alphabet", "image_size", "augment", "within_alphabet_trials")
PROTONET_ONLY = ("learn_scale", "refinement_steps", "eval_refinement_steps")
AUGMENTATIONS = ("none", "characters")
# Settings that presets and dataset defaults provide.
PROTOCOL = ("algorithm", "ways", "shots", "query_shots", "meta_batch_size", "inner_lr",
            "inner_steps", "eval_inner_steps", "first_order", "learning_rate", "iterations",
            "trajectories", "horizon", "max_kl", "estimator", "train_ways", *ONE_SHOT)
# The settings only meta-RL datasets read, and those they do not read.
RL_ONLY = ("trajectories", "horizon", "max_kl", "estimator")
NOT_RL = ("ways", "train_ways", "shots", "query_shots", "learning_rate", "recompute_inner_steps",
          "data_dir", "filters", "backbone", "distance", "global_clipnorm", "test_shots", "export",
          "learning_rate_schedule",
          "export_raw_images", "dtype_policy", "strategy", "cpu_devices", *OMNIGLOT_ONLY,
          *PROTONET_ONLY, "curve_points")
INNER_LOOP = ("inner_lr", "inner_steps", "eval_inner_steps", "first_order")
# The other flags' defaults (None: derived, see `resolve`).
RUN_DEFAULTS = dict(preset=None, dataset=None, log_every=None, seed=0, output_dir=None,
                    data_dir=None, test_tasks=600, val_tasks=100, filters=64, backbone="conv4",
                    distance=None,
                    global_clipnorm=None, learning_rate_schedule="constant", test_shots=(),
                    export=True, export_raw_images=False,
                    recompute_inner_steps=False, dtype_policy="float32")


class UsageError(ValueError):
    """A bad combination of flags; the message names the flag."""


@dataclasses.dataclass(frozen=True)
class Config:
    """The resolved settings of a run (see the flags of `keras_meta.train`)."""

    preset: str
    dataset: str
    algorithm: str
    ways: int
    shots: int
    query_shots: int
    meta_batch_size: int
    inner_lr: float
    inner_steps: int
    eval_inner_steps: int
    first_order: bool
    recompute_inner_steps: bool
    learning_rate: float
    iterations: int
    log_every: int
    seed: int
    output_dir: str
    data_dir: str
    test_tasks: int
    val_tasks: int
    filters: int
    global_clipnorm: float
    test_shots: tuple
    export: bool
    export_raw_images: bool
    distance: str | None = None  # ProtoNet's; None for the other algorithms
    dtype_policy: str = "float32"  # Keras's global dtype policy (runs recorded before it: float32)
    # Meta-RL only (None otherwise): trajectories per task and adaptation step,
    # steps per trajectory, TRPO's trust region, the inner surrogate
    # (`km.rl.MAMLRL`'s `estimator`; None in runs recorded before it: "dice").
    trajectories: int | None = None
    horizon: int | None = None
    max_kl: float | None = None
    estimator: str | None = None
    # Classes per training task where they differ from the test's `ways`
    # (metric learners; ProtoNet's papers train on more ways); None: `ways`.
    train_ways: int | None = None
    # The embedding network of ProtoNet and MatchingNet (`models.BACKBONES`).
    backbone: str = "conv4"
    # The outer learning rate over training: "constant", or "cosine" (decayed
    # to 0 over the time budget, else over the iterations).
    learning_rate_schedule: str = "constant"
    # The one-shot recipe (Omniglot; `ONE_SHOT_DEFAULTS`): training episodes
    # within one alphabet, the images' side (None: 28), the training
    # episodes' distortions, ProtoNet's learned scale and refinement steps,
    # the within-alphabet trials after training, the training time budget in
    # seconds (None: none) and the learning curve's points under it.
    train_within_alphabet: bool = False
    image_size: int | None = None
    augment: str = "none"
    learn_scale: bool = False
    refinement_steps: int = 0
    eval_refinement_steps: int | None = None
    within_alphabet_trials: int = 0
    time_budget: float | None = None
    curve_points: int = 0

    @property
    def rl(self):
        """Whether the dataset is a meta-RL task family (`presets.RL_DATASETS`)."""
        return self.dataset in presets.RL_DATASETS

    @property
    def classification(self):
        return self.dataset != "sinusoid" and not self.rl

    @property
    def benchmark(self):
        """Whether the dataset is a few-shot image benchmark (`presets.BENCHMARKS`)."""
        return self.dataset in presets.BENCHMARKS

    @property
    def image_shape(self):
        """The shape of one example the learner sees (image datasets)."""
        if self.benchmark:
            size = km_benchmarks.IMAGE_SIZES[self.dataset]
            return (size, size, 3)
        return (self.omniglot_size, self.omniglot_size, 1)

    @property
    def omniglot_size(self):
        """The side of Omniglot's images: `image_size`, else the MAML protocol's 28."""
        return self.image_size or 28

    @property
    def gradient_based(self):
        return self.algorithm in models.GRADIENT_BASED

    @property
    def per_step(self):
        """Whether test results come after each of 0..eval_inner_steps inner steps."""
        return self.gradient_based or (self.algorithm == "finetune" and not self.classification)

    @property
    def epochs(self):
        return self.iterations // self.log_every

    def as_dict(self):
        return dataclasses.asdict(self)


def resolve(values, given):
    """The `Config` of a command line.

    Args:
      values: `{flag name: value}` for every flag of `keras_meta.train`
        (None for settings that presets and datasets provide, when not given).
      given: names of the flags given on the command line.

    Raises:
      UsageError: naming the offending flag.
    """
    preset = values["preset"]
    protocol = presets.PRESETS[preset] if preset else {}
    dataset = _dataset(values, given, protocol, preset)
    algorithm = values["algorithm"] if "algorithm" in given else protocol.get(
        "algorithm", presets.DATASET_DEFAULTS[dataset]["algorithm"])
    defaults = presets.defaults(dataset, algorithm)
    settings = {}
    for name in PROTOCOL:
        value = values[name]
        if name in protocol and name in given and value != protocol[name] \
                and name not in presets.OVERRIDABLE:
            raise UsageError(f"--{name}={value} conflicts with --preset={preset}, which sets "
                             f"--{name}={protocol[name]}")
        if name not in given:
            value = protocol.get(name, defaults.get(name))
        settings[name] = value
    for name, default in ONE_SHOT_DEFAULTS.items():
        if settings[name] is None:
            settings[name] = default
    if settings["time_budget"] is not None and not settings["time_budget"] > 0:
        raise UsageError(f"--time_budget={settings['time_budget']} must be > 0 seconds")
    rl = dataset in presets.RL_DATASETS
    if rl:
        _check_rl(settings, dataset, values, given)
    else:
        _check_applicable(settings, dataset, given)
        _check_one_shot(settings, dataset, given)
    filters = _preset_value("filters", values, given, protocol, preset)
    backbone = _backbone(values, given, protocol, preset, settings["algorithm"])
    distance = values["distance"]
    if distance is not None and settings["algorithm"] != "protonet":
        raise UsageError(f"--distance={distance} does not apply to "
                         f"--algorithm={settings['algorithm']} (only protonet has a choice)")
    if settings["algorithm"] == "protonet" and distance is None and not rl:
        distance = models.PROTONET_DISTANCE
    if dataset == "sinusoid" and "export_raw_images" in given:
        raise UsageError(f"--export_raw_images={values['export_raw_images']} does not apply to "
                         "--dataset=sinusoid (it has no images)")
    if settings["algorithm"] == "fomaml":
        settings["first_order"] = True
    log_every = values["log_every"] or _default_log_every(settings["iterations"])
    if settings["iterations"] % log_every:
        raise UsageError(f"--iterations={settings['iterations']} must be a multiple of "
                         f"--log_every={log_every}")
    name = preset or f"{settings['algorithm']}_{dataset}"
    tasks = {"val_tasks": _preset_value("val_tasks", values, given, protocol, preset),
             "test_tasks": values["test_tasks"]}
    if rl:  # the meta-RL datasets' own defaults
        tasks.update({key: value for key, value in presets.RL_EVAL_TASKS[dataset].items()
                      if key not in given})
    return Config(
        preset=preset, dataset=dataset, log_every=log_every, seed=values["seed"],
        output_dir=values["output_dir"] or f"runs/{name}", data_dir=values["data_dir"],
        filters=filters, backbone=backbone, distance=distance, global_clipnorm=values["global_clipnorm"],
        learning_rate_schedule=_preset_value("learning_rate_schedule", values, given, protocol,
                                             preset),
        test_shots=_test_shots(values["test_shots"]),
        export=values["export"] and not rl,
        export_raw_images=_preset_value("export_raw_images", values, given, protocol, preset),
        recompute_inner_steps=values["recompute_inner_steps"],
        dtype_policy=values["dtype_policy"], **tasks, **settings)


def from_settings(**given):
    """The `Config` of a command line that gives the flags `given` (flag name
    → value, e.g. `algorithm="protonet", iterations=100`) and no others."""
    unknown = set(given) - set(PROTOCOL) - set(RUN_DEFAULTS)
    if unknown:
        raise TypeError(f"Unknown settings {sorted(unknown)}; known: "
                        f"{sorted((*PROTOCOL, *RUN_DEFAULTS))}.")
    return resolve({**dict.fromkeys(PROTOCOL), **RUN_DEFAULTS, **given}, set(given))


def _dataset(values, given, protocol, preset):
    dataset = values["dataset"]
    if "dataset" in protocol:
        if "dataset" in given and dataset != protocol["dataset"]:
            raise UsageError(f"--dataset={dataset} conflicts with --preset={preset}, which sets "
                             f"--dataset={protocol['dataset']}")
        return protocol["dataset"]
    return dataset or presets.DATASETS[0]


def _preset_value(name, values, given, protocol, preset):
    """A run flag `name` that a preset may set: the preset's value (a given
    flag that contradicts it is an error), else the flag's."""
    value = values[name]
    if name in protocol:
        if name in given and value != protocol[name]:
            raise UsageError(f"--{name}={value} conflicts with --preset={preset}, which sets "
                             f"--{name}={protocol[name]}")
        value = protocol[name]
    return value


def _backbone(values, given, protocol, preset, algorithm):
    """`--backbone`: the preset's, else the flag's; only for `models.ANY_BACKBONE`."""
    backbone = _preset_value("backbone", values, given, protocol, preset)
    if backbone != "conv4" and algorithm not in models.ANY_BACKBONE:
        raise UsageError(f"--backbone={backbone} does not apply to --algorithm={algorithm} "
                         f"(only {', '.join(models.ANY_BACKBONE)} take another backbone)")
    if backbone != "conv4" and "filters" in given:
        raise UsageError(f"--filters={values['filters']} does not apply to "
                         f"--backbone={backbone} (its widths are fixed)")
    return backbone


def _test_shots(values):
    """`--test_shots` as a tuple of ints >= 1."""
    try:
        shots = tuple(int(value) for value in values or ())
    except ValueError:
        raise UsageError(f"--test_shots={','.join(values)} must be a list of ints") from None
    if any(value < 1 for value in shots):
        raise UsageError(f"--test_shots={','.join(values)} must hold ints >= 1")
    return shots


def _check_applicable(settings, dataset, given):
    algorithm = settings["algorithm"]
    if dataset == "sinusoid":
        if algorithm not in models.REGRESSION:
            raise UsageError(f"--algorithm={algorithm} classifies; --dataset=sinusoid is "
                             f"regression (use one of {', '.join(models.REGRESSION)})")
        if "ways" in given:
            raise UsageError("--ways does not apply to --dataset=sinusoid (regression)")
    for name in RL_ONLY:
        if name in given:
            raise UsageError(f"--{name}={settings[name]} does not apply to --dataset={dataset} "
                             f"(only to the meta-RL datasets: "
                             f"{', '.join(presets.RL_DATASETS)})")
    if "recompute_inner_steps" in given and algorithm not in models.RECOMPUTABLE:
        raise UsageError(f"--recompute_inner_steps does not apply to --algorithm={algorithm} "
                         "(no meta-gradient flows through its inner loop)")
    if settings["train_ways"] is not None and algorithm not in models.ANY_WAYS:
        raise UsageError(f"--train_ways={settings['train_ways']} does not apply to "
                         f"--algorithm={algorithm} (its output has a fixed number of classes; "
                         f"only {', '.join(models.ANY_WAYS)} take other ways at test)")
    if algorithm == "snail" and "test_shots" in given:
        raise UsageError("--test_shots does not apply to --algorithm=snail (its shots are fixed)")
    if algorithm not in models.GRADIENT_BASED:
        applicable = models.INNER_LOOP_FLAGS.get(algorithm, ())
        for name in INNER_LOOP:
            if name in given and name not in applicable:
                raise UsageError(f"--{name} does not apply to --algorithm={algorithm}")
        return
    if "first_order" in given:
        if algorithm == "fomaml" and not settings["first_order"]:
            raise UsageError("--first_order=false contradicts --algorithm=fomaml")
        if algorithm not in (*models.FIRST_ORDER_OPTIONAL, "fomaml"):
            raise UsageError(f"--first_order does not apply to --algorithm={algorithm}")
    if algorithm == "maml_plus_plus" and settings["inner_steps"] < 1:
        raise UsageError("--inner_steps must be >= 1 for --algorithm=maml_plus_plus")


def _check_rl(settings, dataset, values, given):
    """A meta-RL dataset takes MAML-RL (`maml`, or `fomaml`: its first-order
    variant) and none of the flags of episodes of examples."""
    algorithm = settings["algorithm"]
    if algorithm not in models.RL_ALGORITHMS:
        raise UsageError(f"--algorithm={algorithm} does not apply to --dataset={dataset} "
                         f"(meta-RL: one of {', '.join(models.RL_ALGORITHMS)}, MAML-RL)")
    for name in NOT_RL:
        if name in given:
            value = values.get(name, settings.get(name))
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            raise UsageError(f"--{name}={value} does not apply to --dataset={dataset} "
                             "(meta-RL: MAML-RL's policy, TRPO outer step)")
    if "first_order" in given and algorithm == "fomaml" and not settings["first_order"]:
        raise UsageError("--first_order=false contradicts --algorithm=fomaml")


def _check_one_shot(settings, dataset, given):
    """The one-shot recipe's flags: Omniglot's, ProtoNet's, the budget's."""
    algorithm = settings["algorithm"]
    for name in OMNIGLOT_ONLY:
        if name in given and not dataset.startswith("omniglot"):
            raise UsageError(f"--{name}={settings[name]} does not apply to --dataset={dataset} "
                             "(only to omniglot_minimal and omniglot)")
        if name in given and algorithm == "finetune" and name != "within_alphabet_trials":
            raise UsageError(f"--{name}={settings[name]} does not apply to --algorithm=finetune "
                             "(it trains on labelled batches, not episodes)")
    for name in PROTONET_ONLY:
        if name in given and algorithm != "protonet":
            raise UsageError(f"--{name}={settings[name]} does not apply to "
                             f"--algorithm={algorithm} (only to protonet)")
    if settings["within_alphabet_trials"] and algorithm not in models.ANY_WAYS:
        raise UsageError(f"--within_alphabet_trials={settings['within_alphabet_trials']} does "
                         f"not apply to --algorithm={algorithm} (the trials are 20-way; only "
                         f"{', '.join(models.ANY_WAYS)} take any ways at test)")
    if settings["within_alphabet_trials"] == 1:
        raise UsageError("--within_alphabet_trials=1 must be 0 or >= 2 (a 95% CI needs two)")
    if settings["augment"] not in AUGMENTATIONS:
        raise UsageError(f"--augment={settings['augment']} must be one of "
                         f"{', '.join(AUGMENTATIONS)}")
    if settings["curve_points"] and not (settings["time_budget"]
                                         and settings["within_alphabet_trials"]):
        raise UsageError(f"--curve_points={settings['curve_points']} needs --time_budget and "
                         "--within_alphabet_trials (points at even times of the budget, "
                         "evaluated on the trials)")


def _default_log_every(iterations):
    """A tenth of the iterations when that divides them, else all of them."""
    return iterations // 10 if iterations >= 10 and iterations % 10 == 0 else iterations
