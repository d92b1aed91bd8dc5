"""Every use of Keras's and TensorFlow's private names, behind one wall.

keras_meta needs a few things Keras keeps private: the compiled loss and
its tracker (a meta-model computes its loss in its own `train_step`), the
symbolic build of the compiled loss under a distribution strategy, the
batch-norm statistics (`_moments`, replaced by an exactly differentiable
version), the epoch `BackupAndRestore` resumes from, and an optimizer's
slot index. Nothing outside this module touches a private name of Keras or
TensorFlow (`tests/test_keras_internals.py` checks the sources), and each
accessor below was written against `WRITTEN_AGAINST`.

If a Keras release renames or removes one of them, the accessor raises a
`KerasInternalsError` naming the internal and the installed Keras and
TensorFlow versions, and the test suite fails on it rather than a user's
training run. `pyproject.toml` bounds Keras and TensorFlow to the versions CI
tests (`SUPPORTED`).
"""

import keras
import tensorflow as tf

WRITTEN_AGAINST = "Keras 3.15.1, TensorFlow 2.21.0"
# The lowest and newest minor versions CI installs: `pyproject.toml`'s bounds and
# `.ci/lowest-constraints.txt` (Keras 3.7 lacks `_aggregate_additional_loss`).
KERAS_VERSIONS = ("3.8", "3.15")
TENSORFLOW_VERSIONS = ("2.18", "2.21")
SUPPORTED = (f"Keras {KERAS_VERSIONS[0]} to {KERAS_VERSIONS[1]} with TensorFlow "
             f"{TENSORFLOW_VERSIONS[0]} to {TENSORFLOW_VERSIONS[1]}")


class KerasInternalsError(RuntimeError):
    """A private Keras or TensorFlow name keras_meta relies on has changed."""


def _private(owner, name):
    """`owner.<name>`, or a `KerasInternalsError` saying which internal and
    which versions."""
    try:
        return getattr(owner, name)
    except AttributeError as error:
        raise KerasInternalsError(
            f"keras_meta relies on the private `{type(owner).__name__}.{name}`, which Keras "
            f"{keras.__version__} with TensorFlow {tf.__version__} does not have (written "
            f"against {WRITTEN_AGAINST}; supported: {SUPPORTED}). Install a supported "
            "version, or report this with both versions.") from error


# keras.Model (keras/src/trainers/trainer.py) ------------------------------

def compiled_loss(model):
    """The `CompileLoss` of `model.compile(loss=...)`, or None before
    `compile` or without a loss: `callable(y_true, y_pred, sample_weight)`."""
    return _private(model, "_compile_loss")


def compute_compiled_loss(model, x, y, y_pred, sample_weight, training):
    """`model.compute_loss(...)` as `fit` calls it (the compiled loss plus
    the model's added losses, scaled for the distribution strategy)."""
    return _private(model, "_compute_loss")(x=x, y=y, y_pred=y_pred,
                                            sample_weight=sample_weight, training=training)


def aggregate_added_loss(model, loss):
    """A loss of `model.losses` (a regulariser) as `fit` adds it to the
    compiled loss: scaled for the distribution strategy."""
    return _private(model, "_aggregate_additional_loss")(loss)


def loss_tracker(model):
    """The `Mean` metric behind `fit`'s `loss` log."""
    return _private(model, "_loss_tracker")


def set_initial_epoch(model, epoch):
    """Tells the next `fit` to start at `epoch` (None: at `fit`'s own
    `initial_epoch`), as `keras.callbacks.BackupAndRestore` does."""
    _private(model, "_initial_epoch")
    model._initial_epoch = epoch


def model_strategy(model):
    """The distribution strategy `model` was created under, or None."""
    return _private(model, "_distribute_strategy")


class SymbolicBuildFromSpec:
    """A `keras.Model` mix-in: under a distribution strategy, Keras builds
    the compiled loss and metrics from a distributed batch reduced by MEAN,
    which turns integer labels into floats and fails for dict inputs under
    `MultiWorkerMirroredStrategy`; the dataset's element spec, stored by
    `fit` as `dataset_spec`, serves instead."""

    dataset_spec = None

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.dataset_spec is None or model_strategy(self) is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        with self.distribute_strategy.scope():
            _private(self, "_symbolic_build")(data_batch=self.dataset_spec)


# tf.distribute (tensorflow/python/distribute/collective_all_reduce_strategy.py)

def in_multi_worker_mode(strategy):
    """Whether `strategy` spans several workers: the test Keras makes before
    reducing step logs across them."""
    return _private(strategy.extended, "_in_multi_worker_mode")()


# keras.layers.BatchNormalization (keras/src/layers/normalization/batch_normalization.py)

def sublayers(layer):
    """`layer` and every layer nested in it, depth first."""
    return list(_private(layer, "_flatten_layers")(include_self=True))


def reduction_axes(norm):
    """The axes a batch-norm layer reduces its statistics over."""
    return _private(norm, "_reduction_axes")


def replace_moments(norm, moments):
    """Makes `norm` compute its training statistics with
    `moments(inputs, mask)` → `(mean, variance)`; once per layer."""
    _private(norm, "_moments")
    if "_moments" not in vars(norm):
        norm._moments = moments


def keras_moments(norm, inputs, mask):
    """Keras's own `(mean, variance)` of `inputs` for `norm`."""
    return _private(type(norm), "_moments")(norm, inputs, mask)


# keras.optimizers.Optimizer (keras/src/optimizers/base_optimizer.py) ------

def variable_index(optimizer, variable):
    """The position of `variable` among the optimizer's variables (its slots' index)."""
    return _private(optimizer, "_get_variable_index")(variable)
