"""Mixed precision: under `mixed_float16` (dynamic loss scaling) and
`mixed_bfloat16`, every algorithm's meta-gradient on a fixed episode and
fixed float32 weights matches float32's, and `fit` trains; a loss scale that
overflows skips the step and halves, and a non-finite unscaled meta-loss, or
a non-finite meta-gradient at loss scale 1, still raises.

Tolerances, relative error of the whole meta-gradient vector
‖g − g32‖ / ‖g32‖ on the zoo's tiny models (4-channel conv, batch norm,
random 8×8 images), measured on a 2-core AVX512_BF16 CPU with TensorFlow
2.21: mixed_float16 1.5e-3 (Reptile, MetaLSTM) to 7.3e-2 (ProtoNet), mixed_bfloat16
5.5e-3 (MultiTask) to 1.9e-1 (MAMLPlusPlus); most of it is the kernel
gradient of the convolution before batch norm, a sum that cancels (its
inputs are not centred). The bounds below leave room for other CPUs.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta.meta_model import MIN_LOSS_SCALE
from tests import algorithm_zoo as zoo

TOLERANCE = {"mixed_float16": 0.15, "mixed_bfloat16": 0.4}


@pytest.fixture(autouse=True)
def float32_afterwards():
    """Every test leaves Keras's global policy at float32."""
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def fixed_batch(entry):
    """One training batch for `entry`: an episode batch, or labelled images."""
    if entry.data == "labelled":
        rng = np.random.default_rng(0)
        return (rng.normal(size=(12, *zoo.IMAGE)).astype("float32"),
                rng.integers(0, zoo.PRETRAINING_CLASSES, size=(12,)).astype("int32"))
    return zoo.episodes()


def compiled_under(policy, entry, weights=None, optimizer=None):
    """`entry`'s model built under `policy`, compiled, optimizer built; its
    weights set to `weights` (float32 values) when given."""
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = entry.build()
    model.compile(optimizer=optimizer or keras.optimizers.Adam(0.01), loss=entry.loss(model))
    x = fixed_batch(entry)[0]
    model.build(x.shape if entry.data == "labelled" else {k: v.shape for k, v in x.items()})
    model.optimizer.build(model.trainable_variables)
    if weights is not None:
        model.set_weights(weights)
    return model


def unscaled_meta_gradient(model, entry):
    """The meta-gradient (divided by the optimizer's loss scale) as one
    float64 vector, and the meta-loss."""
    grads, _, loss = tf.function(model.meta_gradients)(*fixed_batch(entry))
    scale = float(model.optimizer.scale_loss(1.0))
    return np.concatenate([np.ravel(np.asarray(g, np.float64)) for g in grads]) / scale, float(loss)


def regularised_classifier():
    """`zoo.classifier` with an L2 penalty on its dense kernel."""
    return keras.Sequential([*zoo.classifier().layers[:-1], keras.layers.Dense(
        zoo.WAYS, kernel_regularizer=keras.regularizers.L2(1.0))])


REGULARISED_MAML = zoo.Entry("RegularisedMAML", lambda: km.MAML(
    regularised_classifier(), inner_lr=0.1, inner_steps=1))


# The representative algorithms in the default suite, every algorithm with -m slow.
@pytest.mark.parametrize("name", zoo.params())
def test_meta_gradient_matches_float32_and_fit_trains(name):
    assert_close_to_float32(under_each_policy(zoo.entry(name)))


def test_regulariser_gradients_are_scaled_as_the_loss_gradients():
    assert_close_to_float32(under_each_policy(REGULARISED_MAML))


def assert_close_to_float32(results):
    for policy, result in results.items():
        # Above float32's rounding: the layers did compute in float16/bfloat16.
        assert 1e-5 < result["error"] < TOLERANCE[policy], policy
        assert result["loss"] == pytest.approx(result["float32_loss"], rel=0.02, abs=0.02)
        assert result["compute_dtype"] == policy[len("mixed_"):]
        assert np.all(np.isfinite(result["fit_losses"])), policy
        assert result["weights_finite"], policy


def under_each_policy(entry):
    """`{policy: results}` of `entry` under each mixed policy against float32
    on the same weights: the meta-gradient's relative error, the meta-loss,
    and two steps of `fit`."""
    reference = compiled_under("float32", entry)
    weights = reference.get_weights()
    want, want_loss = unscaled_meta_gradient(reference, entry)
    results = {}
    for policy in TOLERANCE:
        # Scale 2**8: the default 2**15 overflows this episode's float16 gradients.
        optimizer = keras.optimizers.LossScaleOptimizer(
            keras.optimizers.Adam(0.01), initial_scale=2.0**8) \
            if policy == "mixed_float16" else None
        model = compiled_under(policy, entry, weights, optimizer)
        got, loss = unscaled_meta_gradient(model, entry)
        history = model.fit(entry.training_data(2), steps_per_epoch=2, verbose=0)
        results[policy] = dict(
            error=np.linalg.norm(got - want) / np.linalg.norm(want), loss=loss,
            float32_loss=want_loss, compute_dtype=model.learner.compute_dtype,
            fit_losses=history.history["loss"],
            weights_finite=all(np.isfinite(w).all() for w in model.get_weights()))
    return results


class Diverging(km.ProtoNet):
    """A ProtoNet whose meta-gradient (or meta-loss) is infinite."""

    def __init__(self, embedding, infinite="gradients", **kwargs):
        super().__init__(embedding, **kwargs)
        self.infinite = infinite

    def meta_gradients(self, x, y, sample_weight=None):
        grads, y_pred, loss = super().meta_gradients(x, y, sample_weight)
        if self.infinite == "loss":
            return grads, y_pred, loss * np.inf
        return [g * np.inf for g in grads], y_pred, loss


def diverging(infinite, initial_scale=2.0**15):
    keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(0)
    model = Diverging(zoo.embedding(), infinite=infinite)
    model.compile(optimizer=keras.optimizers.LossScaleOptimizer(
        keras.optimizers.Adam(0.01), initial_scale=initial_scale),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_mixed_float16_compiles_a_loss_scale_optimizer():
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = km.MAML(zoo.classifier(), inner_lr=0.1)
    model.compile(optimizer="adam", loss=zoo.CROSSENTROPY)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_an_overflowing_loss_scale_skips_the_step_and_halves():
    model = compiled_under("mixed_float16", zoo.entry("MAML"), optimizer=keras.optimizers.
                           LossScaleOptimizer(keras.optimizers.Adam(0.01), initial_scale=2.0**60))
    before = model.get_weights()
    model.train_on_batch(*fixed_batch(zoo.entry("MAML")))  # float16 overflows
    assert float(model.optimizer.dynamic_scale) == 2.0**59
    assert len(model.get_weights()) == len(before)
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_a_non_finite_gradient_at_loss_scale_one_raises():
    model = diverging("gradients", initial_scale=4 * MIN_LOSS_SCALE)
    inputs, query_y = fixed_batch(zoo.entry("ProtoNet"))
    model.train_on_batch(inputs, query_y)  # skipped at 4, then at 2
    model.train_on_batch(inputs, query_y)
    before = [np.array(v) for v in model.trainable_variables]
    assert float(model.optimizer.dynamic_scale) == MIN_LOSS_SCALE
    with pytest.raises(FloatingPointError, match="meta-gradient is not finite"):
        model.train_on_batch(inputs, query_y)
    assert len(model.trainable_variables) == len(before)
    for got, want in zip(model.trainable_variables, before):
        np.testing.assert_array_equal(got, want)


def test_a_non_finite_meta_loss_raises_under_loss_scaling():
    model = diverging("loss")
    with pytest.raises(FloatingPointError, match="Meta-iteration 1: the meta-loss or the "
                                                 "meta-gradient is not finite"):
        model.fit(zoo.entry("ProtoNet").training_data(1), steps_per_epoch=1, verbose=0)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", ["MAML", "ProtoNet"])
def test_an_exported_mixed_precision_model_serves_what_predict_gives(policy, name, tmp_path):
    entry = zoo.entry(name)
    model = compiled_under(policy, entry)
    inputs, _ = zoo.episodes(tasks=3, seed=4)
    predicted = model.predict_on_batch(inputs)
    model.export(str(tmp_path / "saved_model"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    served = loaded.serve(**{key: tf.constant(value) for key, value in inputs.items()})
    assert served.dtype == tf.float32 and predicted.dtype == np.float32
    np.testing.assert_allclose(served.numpy(), predicted, rtol=1e-5, atol=1e-5)
