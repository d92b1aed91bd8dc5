"""Bad-argument fuzzing (hypothesis) of the episode samplers.

One argument of `km.data.sinusoid_episodes` or `km.data.episodes` (on a
small in-memory source) gets a random value: numbers of every sign and size,
NaN, booleans, strings, None, sequences. Either the sampler rejects it with
a `ValueError` / `TypeError` naming the argument, or the value was valid and
the stream's first batch has the documented shapes, dtypes and label range.
"""

import math
import re

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km

CLASSES, PER_CLASS, SIZE = 6, 5, 4
SOURCE = tf.data.Dataset.from_tensor_slices((
    np.random.default_rng(0).integers(0, 256, (CLASSES * PER_CLASS, SIZE, SIZE, 1), np.uint8),
    np.repeat(np.arange(CLASSES), PER_CLASS)))

SMALL_INTS = st.integers(-3, 12)
HUGE_INTS = st.sampled_from([2 ** 31, 2 ** 63, -2 ** 63 - 1, 10 ** 30])
NUMBERS = st.one_of(SMALL_INTS, HUGE_INTS,
                    st.floats(allow_nan=True, allow_infinity=True, width=32))
ANYTHING = st.one_of(NUMBERS, st.booleans(), st.none(), st.text(max_size=3),
                     st.lists(SMALL_INTS, max_size=3), st.tuples(NUMBERS, NUMBERS))
RANGES = st.one_of(st.tuples(NUMBERS, NUMBERS), st.lists(NUMBERS, max_size=3), ANYTHING)

SINUSOID = dict(shots=2, query_shots=3, meta_batch_size=2, seed=0, start=0,
                amplitude_range=(0.1, 5.0), phase_range=(0.0, math.pi), x_range=(-5.0, 5.0))
IMAGES = dict(source=SOURCE, ways=2, shots=1, query_shots=2, meta_batch_size=2, seed=0, start=0,
              rotations=False, image_size=None, classes=None, split=None, group_by=None,
              preprocess=None, image_key="image", label_key="label")


def sinusoid_arguments():
    name = st.sampled_from(sorted(SINUSOID))
    return name.flatmap(lambda n: st.tuples(st.just(n), RANGES if n.endswith("range") else ANYTHING))


def image_arguments():
    values = {"image_size": st.one_of(ANYTHING, st.tuples(SMALL_INTS, SMALL_INTS)),
              "classes": st.one_of(ANYTHING, st.lists(SMALL_INTS, max_size=4),
                                   st.dictionaries(st.sampled_from(["train", "test"]),
                                                   st.lists(SMALL_INTS, max_size=3))),
              "split": st.one_of(ANYTHING, st.sampled_from(["train", "test"])),
              "preprocess": st.one_of(ANYTHING, st.sampled_from([
                  tf.image.rgb_to_grayscale, lambda image: image, lambda image: image[0],
                  lambda image: tf.cast(image, tf.float32) / 255.0])),
              "source": st.one_of(ANYTHING, st.sampled_from([
                  "no_such_dataset", SOURCE.map(lambda image, label: image),
                  SOURCE.map(lambda image, label: {"image": image, "label": label})]))}
    name = st.sampled_from(sorted(IMAGES))
    return name.flatmap(lambda n: st.tuples(st.just(n), values.get(n, ANYTHING)))


def first_batch_or_named_error(sampler, arguments, name):
    """The first batch of `sampler(**arguments)`, or None after an error that names `name`."""
    try:
        inputs, query_y = next(iter(sampler(**arguments)))
    except (ValueError, TypeError) as error:
        assert re.search(rf"\b{name}\b", str(error)), \
            f"{type(error).__name__} does not name `{name}`: {error}"
        return None
    return {**{k: v.numpy() for k, v in inputs.items()}, "query_y": query_y.numpy()}


def check_sinusoid(batch, a):
    tasks = a["meta_batch_size"]
    assert batch["support_x"].shape == batch["support_y"].shape == (tasks, a["shots"], 1)
    assert batch["query_x"].shape == batch["query_y"].shape == (tasks, a["query_shots"], 1)
    for value in batch.values():
        assert value.dtype == np.float32 and np.all(np.isfinite(value))
    low, high = a["x_range"]
    assert np.all((low <= batch["support_x"]) & (batch["support_x"] <= high))


def check_images(batch, a):
    tasks, ways = a["meta_batch_size"], a["ways"]
    size = a["image_size"] or SIZE
    size = (size, size) if isinstance(size, int) else tuple(size)
    assert batch["support_x"].shape == (tasks, ways * a["shots"], *size, 1)
    assert batch["query_x"].shape == (tasks, ways * a["query_shots"], *size, 1)
    for key in ("support_y", "query_y"):
        assert batch[key].dtype == np.int32
        assert set(np.unique(batch[key])) == set(range(ways))


def fuzz(examples, derandomize):
    cases = []
    settings = hypothesis.settings(max_examples=examples, deadline=None, derandomize=derandomize,
                                   database=None,
                                   suppress_health_check=list(hypothesis.HealthCheck))

    @settings
    @hypothesis.given(argument=sinusoid_arguments())
    def sinusoid(argument):
        cases.append(argument)
        arguments = {**SINUSOID, argument[0]: argument[1]}
        batch = first_batch_or_named_error(km.data.sinusoid_episodes, arguments, argument[0])
        if batch is not None:
            check_sinusoid(batch, arguments)

    @settings
    @hypothesis.given(argument=image_arguments())
    def images(argument):
        cases.append(argument)
        arguments = {**IMAGES, argument[0]: argument[1]}
        batch = first_batch_or_named_error(km.data.episodes, arguments, argument[0])
        if batch is not None:
            check_images(batch, arguments)

    sinusoid()
    images()
    return len(cases)


def test_bad_sampler_arguments():
    assert fuzz(examples=60, derandomize=True) >= 120


@pytest.mark.slow
def test_bad_sampler_arguments_at_length():
    cases = fuzz(examples=1000, derandomize=False)
    print(f"{cases} fuzzed sampler calls")
    assert cases >= 2000
