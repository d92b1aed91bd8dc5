"""The search space of each algorithm: which meta-hyperparameters a search
varies, over which range, and their defaults.

Every default is the value `python -m keras_meta.train` uses for the
algorithm and dataset, so the default setting of a search is the CLI's run.
Ranges bracket the published values (MAML: inner lr 0.4 on Omniglot, 0.01 on
sinusoids; Adam 1e-3). Learning rates are log-uniform. The backbone width
(`filters`) is searched on Omniglot only: the sinusoid MLP is the paper's.

To fix one of them, or narrow its range, declare it first in the
`keras_tuner.HyperParameters` given to the tuner (`hp.Fixed("inner_lr", 0.4)`):
a value declared before is kept.
"""

from keras_meta.algorithms import protonet
from keras_meta.cli import config as run_config
from keras_meta.cli import models, presets

GRADIENT_BASED_INNER = ("inner_lr", "inner_steps", "eval_inner_steps")


def declare(hp, algorithm, dataset):
    """Declares the searched settings of `algorithm` on `dataset` in `hp`.

    Args:
      hp: a `keras_tuner.HyperParameters`.
      algorithm: a name of `python -m keras_meta.train --algorithm`.
      dataset: `"omniglot_minimal"`, `"omniglot"` or `"sinusoid"`.

    Returns:
      `{setting: value}`: the trial's values of the searched settings, named
      as the flags of `python -m keras_meta.train`.

    Example:

    ```python
    import keras_tuner, keras_meta.tune
    hp = keras_tuner.HyperParameters()
    hp.Fixed("inner_lr", 0.4)   # declared first: kept, not searched
    settings = keras_meta.tune.spaces.declare(hp, "maml", "omniglot_minimal")
    assert settings["inner_lr"] == 0.4 and settings["eval_inner_steps"] == 3  # the defaults
    ```
    """
    defaults = presets.defaults(dataset, algorithm)
    image = dataset != "sinusoid"
    values = {"learning_rate": hp.Float("learning_rate", 1e-4, 1e-2, sampling="log",
                                        default=defaults["learning_rate"])}
    if image:
        values["meta_batch_size"] = hp.Choice("meta_batch_size", [2, 4, 8, 16],
                                              default=defaults["meta_batch_size"])
        values["filters"] = hp.Choice("filters", [32, 64],
                                      default=run_config.RUN_DEFAULTS["filters"])
    else:
        values["meta_batch_size"] = hp.Choice("meta_batch_size", [5, 10, 25],
                                              default=defaults["meta_batch_size"])
    inner = (GRADIENT_BASED_INNER if algorithm in models.GRADIENT_BASED
             else models.INNER_LOOP_FLAGS.get(algorithm, ()))
    if "inner_lr" in inner:
        low, high = (0.01, 1.0) if image else (1e-3, 0.1)
        values["inner_lr"] = hp.Float("inner_lr", low, high, sampling="log",
                                      default=defaults["inner_lr"])
    if "inner_steps" in inner:
        values["inner_steps"] = hp.Int("inner_steps", 1, max(5, defaults["inner_steps"]),
                                       default=defaults["inner_steps"])
    if "eval_inner_steps" in inner:
        if algorithm == "finetune":
            values["eval_inner_steps"] = hp.Int("eval_inner_steps", 10, 200, step=10,
                                                default=defaults["eval_inner_steps"])
        else:
            values["eval_inner_steps"] = hp.Int("eval_inner_steps", 1, 10,
                                                default=defaults["eval_inner_steps"])
    if algorithm == "protonet":
        values["distance"] = hp.Choice("distance", list(protonet.DISTANCES),
                                       default=models.PROTONET_DISTANCE)
    return values
