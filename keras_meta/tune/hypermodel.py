"""`MetaHyperModel`: every algorithm of `python -m keras_meta.train` as a
KerasTuner `HyperModel` whose meta-hyperparameters are search spaces."""

import dataclasses

import keras
import keras_tuner

from keras_meta.callbacks import FewShotEvaluation
from keras_meta.cli import config as run_config
from keras_meta.cli import models, streams
from keras_meta.meta_model import input_shapes
from keras_meta.tune import spaces


class MetaHyperModel(keras_tuner.HyperModel):
    """Builds and meta-trains one algorithm for each trial of a KerasTuner search.

    A trial's model is the one `python -m keras_meta.train` builds for the
    trial's settings (`keras_meta.tune.spaces.declare`: inner and outer
    learning rates, inner steps, meta-batch size, backbone width, ProtoNet's
    distance, ...), from the same weights' seed in every trial. Its `fit`
    reads the hypermodel's own episode streams (the meta-batch size is a
    hyperparameter) and takes no data:

    - an *epoch* is `steps_per_epoch` meta-iterations followed by a few-shot
      validation on the same `val_tasks` validation tasks, logged as
      `val_accuracy` and its 95% confidence half-width `val_accuracy_ci`
      (`val_loss` and `val_loss_ci` for sinusoids), the `objective`;
    - Hyperband's `epochs` and `initial_epoch` count these epochs; a trial
      that continues an earlier one starts on the training batches after
      those the earlier one saw (from the earlier trial's best checkpoint:
      its outer optimizer continues from its state there);
    - a trial whose training diverges fails (`keras_tuner.errors.FailedTrialError`)
      and the search goes on.

    Args:
      algorithm: a name of `python -m keras_meta.train --algorithm`.
      dataset: `"omniglot_minimal"` (packaged, offline), `"omniglot"` or
        `"sinusoid"`.
      steps_per_epoch: meta-iterations per epoch.
      val_tasks: validation tasks evaluated at each epoch's end.
      seed: seed of the initial weights and of the training (`seed`),
        validation (`seed + 2`) and test (`seed + 1`) tasks.
      **settings: other settings of the run, as `python -m keras_meta.train`
        flags (`ways=20`, `shots=5`, `data_dir=...`); a searched setting
        given here is searched all the same (fix it with `hp.Fixed`).

    Example:

    ```python
    import tempfile
    import keras_tuner, keras_meta.tune
    hypermodel = keras_meta.tune.MetaHyperModel("maml", "sinusoid", steps_per_epoch=2,
                                                val_tasks=10)
    tuner = keras_tuner.Hyperband(hypermodel, objective=hypermodel.objective, max_epochs=2,
                                  seed=1, directory=tempfile.mkdtemp())
    tuner.search(verbose=0)
    best = tuner.get_best_models(1)[0]
    ```
    """

    def __init__(self, algorithm="maml", dataset="omniglot_minimal", steps_per_epoch=100,
                 val_tasks=100, seed=0, **settings):
        if not isinstance(steps_per_epoch, int) or isinstance(steps_per_epoch, bool) \
                or steps_per_epoch < 1:
            raise ValueError(f"`steps_per_epoch` must be an int >= 1; received "
                             f"{steps_per_epoch!r}.")
        if not isinstance(val_tasks, int) or isinstance(val_tasks, bool) or val_tasks < 2:
            raise ValueError(f"`val_tasks` must be an int >= 2; received {val_tasks!r}.")
        try:
            self.base_config = run_config.from_settings(
                algorithm=algorithm, dataset=dataset, seed=seed, val_tasks=val_tasks,
                iterations=steps_per_epoch, log_every=steps_per_epoch, **settings)
        except run_config.UsageError as error:
            raise ValueError(str(error).replace("--", "")) from None
        super().__init__(name=f"{algorithm}_{dataset}")
        self.steps_per_epoch = steps_per_epoch

    @property
    def objective(self):
        """The search's `keras_tuner.Objective`: the validation accuracy
        (max), or the validation MSE (min) for sinusoids."""
        if self.base_config.classification:
            return keras_tuner.Objective("val_accuracy", direction="max")
        return keras_tuner.Objective("val_loss", direction="min")

    def config(self, hp):
        """The settings of the trial whose values `hp` holds, as the
        `Config` that `python -m keras_meta.train` resolves its flags to."""
        config = self.base_config
        return dataclasses.replace(config, **spaces.declare(hp, config.algorithm, config.dataset))

    def build(self, hp):
        """The compiled model of the trial, its weights drawn from `seed` and
        its optimizer built, so that a checkpoint restores both (Hyperband
        continues a trial with its optimizer's state)."""
        config = self.config(hp)
        keras.utils.set_random_seed(config.seed)
        labelled = streams.labelled(config)
        model = models.build_model(config, num_classes=labelled and labelled[1])
        model.build(input_shapes(labelled[0] if labelled else streams.episodes(config, "train")))
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp, model, *args, epochs=1, initial_epoch=0, callbacks=(), verbose=0,
            **kwargs):
        """Meta-trains `model` for epochs `initial_epoch..epochs`, validating
        after each; returns the `History`. `callbacks` (those of
        `tuner.search(callbacks=...)` and the tuner's own) see the
        validation results in their epoch logs."""
        if args or kwargs:
            received = [*(["data"] if args else []), *kwargs]
            raise TypeError("MetaHyperModel.fit reads its own episode streams: give "
                            "`tuner.search()` only `epochs` and `callbacks` (received "
                            f"{', '.join(received)}).")
        config = self.config(hp)
        labelled = streams.labelled(config)
        train = labelled[0] if labelled else streams.episodes(
            config, "train", config.meta_batch_size, start=initial_epoch * self.steps_per_epoch)
        validation = FewShotEvaluation(streams.episodes(config, "validation"),
                                       num_tasks=config.val_tasks, prefix="val")
        try:
            return model.fit(train, steps_per_epoch=self.steps_per_epoch, epochs=epochs,
                             initial_epoch=initial_epoch, callbacks=[validation, *callbacks],
                             verbose=verbose)
        except FloatingPointError as error:
            raise keras_tuner.errors.FailedTrialError(f"Training diverged: {error}") from error
