"""XLA (`compile(jit_compile=True)`): every algorithm's steps equal the
default executor's, and second-order meta-gradients stay exact (max pooling
and batch norm take their XLA paths, `keras_meta.xla`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta import max_pooling, xla
from tests import algorithm_zoo
from tests.test_maml import image_episode



def crossentropy():
    """A new loss: Keras losses compute in the float type of their construction."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize("window, strides, padding, size", [
    ((2, 2), (2, 2), "VALID", (7, 9)),  # conv4's pooling on odd sizes: the remainder dropped
    ((2, 2), (2, 2), "SAME", (7, 9)),   # padded after
    ((3, 3), (2, 2), "SAME", (8, 7)),   # overlapping windows
    ((3, 2), (1, 2), "VALID", (6, 7)),
])
def test_max_pool_derivatives_equal_tensorflows_kernels(window, strides, padding, size):
    """`max_pool`, compiled with XLA or not, against TensorFlow's own kernels
    without XLA in float64: values, gradient and Hessian-vector product
    (the derivative of the backward pass, which XLA lowers inexactly)."""
    rng = np.random.default_rng(0)
    x, direction = (tf.constant(rng.normal(size=(2, *size, 3))) for _ in range(2))

    def derivatives(pool):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = pool(x)
                loss = tf.reduce_sum(tf.sin(y) * y)
            gradient = inner.gradient(loss, x)
            along = tf.reduce_sum(gradient * direction)
        return y, gradient, outer.gradient(along, x)

    expected = tf.function(
        lambda: derivatives(lambda x: tf.nn.max_pool2d(x, window, strides, padding)))()
    for jit in (False, True):
        got = tf.function(lambda: derivatives(
            lambda x: max_pooling.max_pool(x, window, strides, padding)), jit_compile=jit)()
        for value, reference in zip(got, expected):
            np.testing.assert_allclose(value, reference, rtol=0, atol=1e-13)


def second_order_step_differences(learner, inputs, labels):
    """Per variable: max |XLA step − default step| / max |default update| of
    one second-order MAML SGD(1) step (the meta-gradient) from the same weights."""
    steps, start = [], None
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = km.MAML(learner(), inner_lr=0.4)
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss=crossentropy(), jit_compile=jit)
        assert model.jit_compile is jit
        model.build({key: value.shape for key, value in inputs.items()})
        start = start or [v.numpy() for v in model.trainable_variables]
        model.train_on_batch(inputs, labels)
        steps.append([v.numpy() for v in model.trainable_variables])
    return [np.max(np.abs(a - b)) / np.max(np.abs(w - a))
            for a, b, w in zip(*steps, start) if np.max(np.abs(w - a)) > 1e-3]


def test_an_xla_second_order_step_is_exact_in_float64(float64):
    """Max pooling's second derivative under XLA: in float64 (batch norm
    element-wise everywhere), XLA's second-order meta-gradient through a
    convolution, batch norm, ReLU and max pooling equals the default
    executor's to rounding."""
    inputs, labels = algorithm_zoo.episodes()
    inputs = {k: v.astype("float64") if v.dtype == np.float32 else v for k, v in inputs.items()}
    assert max(second_order_step_differences(algorithm_zoo.classifier, inputs, labels)) < 1e-11


@pytest.mark.slow
def test_an_xla_second_order_step_is_exact_in_float32():
    """Batch norm under XLA: in float32 at conv4's size (fused kernels without
    XLA, whose XLA lowering came out 4% off here), XLA's meta-gradient equals
    the default executor's to float32 rounding."""
    inputs, labels = image_episode(0, tasks=2, ways=5, shots=1, queries=5)
    assert max(second_order_step_differences(lambda: km.learners.conv4(5), inputs, labels)) < 1e-3


@pytest.mark.parametrize("name", algorithm_zoo.params())
def test_every_algorithm_steps_alike_with_xla(name, monkeypatch):
    """`compile(jit_compile=True)` compiles each algorithm's step with XLA,
    and two steps of `fit` (an optimizer with variables of its own) give the
    default executor's weights to float32 rounding. LEO's sampling noise is
    fixed: XLA draws other normals from the same key."""
    if name == "LEO":
        monkeypatch.setattr(km.LEO, "sampling_noise", fixed_noise)
    entry = algorithm_zoo.entry(name)
    weights = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = entry.build()
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=entry.loss(model),
                      jit_compile=jit)
        assert model.jit_compile is jit
        model.fit(entry.training_data(2), steps_per_epoch=2, epochs=1, verbose=0)
        weights.append(model.get_weights())
    for plain, compiled in zip(*weights):
        np.testing.assert_allclose(compiled, plain, atol=5e-5)


def fixed_noise(model, latent_shape, dtype):
    """LEO's `sampling_noise` as fixed numbers: `(ε_z, ε_w)`, `[T, W, L]` and `[T, W, D]`."""
    weight_shape = tf.concat([latent_shape[:2], [model.feature_size]], axis=0)
    return tuple(tf.sin(tf.reshape(tf.range(tf.cast(tf.reduce_prod(shape), dtype)), shape))
                 for shape in (latent_shape, weight_shape))


def test_the_xla_paths_are_taken_only_when_compiled(monkeypatch):
    """Outside `xla.compiling(True)` max pooling is Keras's own (whose
    second derivative is TensorFlow's exact, faster kernel)."""
    calls, max_pool = [], max_pooling.max_pool
    monkeypatch.setattr(max_pooling, "max_pool", lambda *args: calls.append(args) or max_pool(*args))
    model = km.MAML(km.learners.conv4(3, filters=2))
    model.compile(loss=crossentropy())
    inputs, _ = image_episode(0)
    model(inputs)
    assert not calls
    with xla.compiling(True):
        model(inputs)
    assert not calls  # `call` itself says whether it is compiled: not here
    model.compile(loss=crossentropy(), jit_compile=True)
    model(inputs)
    assert calls and all(args[1:] == ((2, 2), (2, 2), "VALID") for args in calls)
