"""`km.data.episodes` on synthetic sources whose images identify themselves:
every example is random noise, so an episode image is matched back to its
class and example (and rotation) by content."""

import collections

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_meta as km
from tests.data_fixtures import check_batches, rotation_lookup

SIZE = 5


def synthetic(counts, seed=0, size=SIZE, channels=1):
    """Random uint8 images, `counts[c]` of class `c`: `(images, labels)`."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    images = rng.integers(0, 256, (len(labels), size, size, channels), dtype=np.uint8)
    order = rng.permutation(len(labels))  # the source need not be sorted by class
    return images[order], labels[order]


def identifier(images, labels):
    """`identify(episode image)` → `((class, quarter turns), example index)`."""
    lookup = rotation_lookup(images)

    def identify(image):
        index, turns = lookup[np.round(image * 255).astype(np.uint8).tobytes()]
        return (int(labels[index]), turns), index

    return identify


def source(images, labels):
    return tf.data.Dataset.from_tensor_slices((images, labels))


def episodes(images, labels, **kwargs):
    kwargs = {"ways": 3, "shots": 2, "query_shots": 3, "meta_batch_size": 4, **kwargs}
    return km.data.episodes(source(images, labels), **kwargs)


def test_element_structure():
    images, labels = synthetic([6] * 5, channels=3)
    dataset = episodes(images, labels)
    assert dataset.cardinality() == tf.data.INFINITE_CARDINALITY
    inputs_spec, query_spec = dataset.element_spec
    assert inputs_spec["support_x"].shape == (4, 6, SIZE, SIZE, 3)
    assert inputs_spec["support_y"].shape == (4, 6)
    assert inputs_spec["query_x"].shape == (4, 9, SIZE, SIZE, 3)
    assert query_spec.shape == (4, 9)
    assert [inputs_spec[k].dtype for k in ("support_x", "support_y", "query_x")] == [
        tf.float32, tf.int32, tf.float32]
    assert query_spec.dtype == tf.int32


@settings(max_examples=8, deadline=None)
@given(
    counts=st.lists(st.integers(4, 9), min_size=2, max_size=7),
    ways=st.integers(1, 7), shots=st.integers(1, 2), query_shots=st.integers(1, 2),
    tasks=st.integers(1, 3), seed=st.integers(0, 2**31 - 1),
)
def test_invariants(counts, ways, shots, query_shots, tasks, seed):
    ways = min(ways, len(counts))
    images, labels = synthetic(counts, seed=seed % 1000)
    dataset = episodes(images, labels, ways=ways, shots=shots, query_shots=query_shots,
                       meta_batch_size=tasks, seed=seed)
    identify = identifier(images, labels)
    for label_to_class in check_batches(dataset, 4, identify, ways, shots, query_shots):
        assert all(turns == 0 for _, turns in label_to_class.values())


def test_classes_examples_labels_and_order_are_random():
    counts = [4, 5, 6, 7, 8, 9]
    images, labels = synthetic(counts)
    selected = [1, 2, 4, 5]
    dataset = episodes(images, labels, classes=selected, ways=2, shots=1, query_shots=2,
                       meta_batch_size=16, seed=3)
    identify = identifier(images, labels)
    class_draws, examples, label_of_smaller = collections.Counter(), set(), collections.Counter()
    sorted_supports = 0
    for inputs, query_y in dataset.take(60).as_numpy_iterator():
        for t in range(len(query_y)):
            classes = {}
            for image, label in zip(inputs["query_x"][t], query_y[t]):
                (cls, _), index = identify(image)
                classes[cls] = int(label)
                examples.add(index)
            class_draws.update(classes.keys())
            label_of_smaller[classes[min(classes)]] += 1
            sorted_supports += bool(np.all(np.diff(query_y[t]) >= 0))
    tasks = 60 * 16
    assert set(class_draws) == set(selected)
    expected = tasks * 2 / len(selected)
    assert all(abs(n - expected) < 0.15 * expected for n in class_draws.values()), class_draws
    assert examples == {i for i, label in enumerate(labels) if label in selected}
    assert all(abs(n - tasks / 2) < 0.1 * tasks for n in label_of_smaller.values())
    assert sorted_supports < 0.5 * tasks  # 4 query examples are sorted by label 1/6 of the time


def test_source_is_read_once():
    images, labels = synthetic([5] * 4)
    reads = []

    def examples():
        for index in range(len(labels)):
            reads.append(index)
            yield images[index], labels[index]

    dataset = tf.data.Dataset.from_generator(examples, output_signature=(
        tf.TensorSpec((SIZE, SIZE, 1), tf.uint8), tf.TensorSpec((), tf.int64)))
    stream = km.data.episodes(dataset, ways=2, shots=2, query_shots=2, meta_batch_size=4)
    assert len(list(stream.take(20))) == 20
    assert reads == list(range(len(labels)))


def test_same_seed_same_episodes_other_seed_other_episodes():
    images, labels = synthetic([5] * 8)

    def first(seed, count=3):
        return list(episodes(images, labels, seed=seed).take(count).as_numpy_iterator())

    a, b, c = first(7), first(7), first(8)
    for (inputs_a, y_a), (inputs_b, y_b) in zip(a, b):
        assert all(np.array_equal(inputs_a[k], inputs_b[k]) for k in inputs_a)
        assert np.array_equal(y_a, y_b)
    assert not np.array_equal(a[0][0]["support_x"], c[0][0]["support_x"])
    assert not np.array_equal(a[0][0]["support_x"], a[1][0]["support_x"])


def test_resumable_with_skip():
    images, labels = synthetic([5] * 8)
    stream = list(episodes(images, labels, seed=2).take(6).as_numpy_iterator())
    resumed = next(episodes(images, labels, seed=2).skip(5).as_numpy_iterator())
    assert np.array_equal(stream[5][0]["query_x"], resumed[0]["query_x"])
    assert np.array_equal(stream[5][1], resumed[1])


def test_rotations_make_four_classes_of_one():
    images, labels = synthetic([6, 6])
    dataset = episodes(images, labels, classes=[1], rotations=True, ways=4, shots=1,
                       query_shots=2, meta_batch_size=8)
    identify = identifier(images, labels)
    for label_to_class in check_batches(dataset, 5, identify, 4, 1, 2):
        assert sorted(label_to_class.values()) == [(1, turns) for turns in range(4)]
    with pytest.raises(ValueError, match="`ways`=5 exceeds the 4 classes available"):
        episodes(images, labels, classes=[1], rotations=True, ways=5)


def test_rotated_classes_are_drawn_like_any_class():
    images, labels = synthetic([5] * 3)
    dataset = episodes(images, labels, rotations=True, ways=5, shots=2, query_shots=2,
                       meta_batch_size=8, seed=1)
    identify = identifier(images, labels)
    seen = collections.Counter()
    for label_to_class in check_batches(dataset, 30, identify, 5, 2, 2):
        seen.update(label_to_class.values())
    assert set(seen) == {(cls, turns) for cls in range(3) for turns in range(4)}


def test_group_by_and_class_split():
    images, labels = synthetic([5] * 6)
    groups = labels // 2  # classes {0, 1} form group 0, {2, 3} group 1, {4, 5} group 2
    dataset = tf.data.Dataset.from_tensor_slices(
        {"pixels": images, "character": labels, "family": groups})
    split = {"train": [0, 2], "test": [1]}
    identify = identifier(images, labels)
    for name, allowed in (("train", {0, 1, 4, 5}), ("test", {2, 3})):
        stream = km.data.episodes(dataset, ways=2, shots=1, query_shots=1, meta_batch_size=8,
                                  classes=split, split=name, group_by="family",
                                  image_key="pixels", label_key="character")
        drawn = set()
        for label_to_class in check_batches(stream, 10, identify, 2, 1, 1):
            drawn.update(cls for cls, _ in label_to_class.values())
        assert drawn == allowed


def test_default_preprocessing_image_size_and_custom_preprocess():
    images, labels = synthetic([5] * 3, size=8, channels=3)
    resized = episodes(images, labels, image_size=4, ways=2, shots=1, query_shots=1)
    x = next(iter(resized))[0]["support_x"]
    assert x.shape[2:] == (4, 4, 3)
    plain = next(episodes(images, labels, seed=5).as_numpy_iterator())[0]["support_x"]
    doubled = next(episodes(images, labels, seed=5,
                            preprocess=lambda image: tf.cast(image, tf.float32) * 2.0
                            ).as_numpy_iterator())[0]["support_x"]
    np.testing.assert_allclose(doubled, plain * 255 * 2, rtol=1e-6)
    assert 0.0 <= plain.min() and plain.max() <= 1.0


def test_tfds_source_by_alphabet(omniglot_data_dir, omniglot_reference):
    stream = km.data.episodes("omniglot_minimal", ways=5, shots=1, query_shots=2,
                              meta_batch_size=8, classes=["Latin", "Greek"], group_by="alphabet",
                              preprocess=km.data.omniglot_preprocess, data_dir=omniglot_data_dir)
    lookup = omniglot_reference["lookup"]
    alphabets = set()
    for inputs, _ in stream.take(5).as_numpy_iterator():
        for image in inputs["query_x"].reshape(-1, 28, 28, 1):
            index, turns = lookup[image.tobytes()]
            assert turns == 0
            alphabets.add(omniglot_reference["alphabet"][index])
    assert alphabets == {"Latin", "Greek"}


def bad(images=None, labels=None, **kwargs):
    if images is None:
        images, labels = synthetic([5] * 3)
    return episodes(images, labels, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"ways": 4}, r"`ways`=4 exceeds the 3 classes available"),
    ({"ways": 13, "rotations": True}, r"`ways`=13 exceeds the 12 classes available \(3 × 4"),
    ({"shots": 3, "query_shots": 3}, r"`shots` \+ `query_shots` = 6 exceeds .* has 5"),
    ({"ways": 0}, r"`ways` must be an int >= 1; received 0"),
    ({"shots": "2"}, r"`shots` must be an int >= 1; received '2'"),
    ({"query_shots": 0}, r"`query_shots` must be an int >= 1"),
    ({"meta_batch_size": True}, r"`meta_batch_size` must be an int >= 1; received True"),
    ({"seed": 1.5}, r"`seed` must be an int; received 1.5"),
    ({"rotations": "yes"}, r"`rotations` must be a bool"),
    ({"image_size": (4, 0)}, r"`image_size` must be None, an int >= 1 or a \(height, width\)"),
    ({"classes": [0, 7]}, r"`classes` lists labels absent from the source: \[7\]; available: 3"),
    ({"classes": "0"}, r"`classes` must be a collection of classes"),
    ({"classes": []}, r"`classes` is empty"),
    ({"classes": [0], "split": "train"}, r"`split`='train' needs `classes` to be a mapping"),
    ({"classes": {"train": [0, 1], "test": [1, 2]}, "split": "train"},
     r"`classes`: splits 'train' and 'test' share 1 classes \(\[1\]\)"),
    ({"classes": {"train": [0], "test": [1]}, "split": "validation"},
     r"`split` must be one of \['train', 'test'\]; received 'validation'"),
    ({"group_by": "alphabet"}, r"`group_by`='alphabet' needs a dataset of feature dicts"),
    ({"preprocess": lambda image: image}, r"`preprocess` must return float32 images"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bad(**kwargs)


def test_rotations_need_square_images():
    images = np.zeros((6, 4, 5, 1), np.uint8)
    with pytest.raises(ValueError, match=r"`rotations` needs square images; they are 4×5"):
        bad(images, np.arange(6) % 2, ways=2, shots=1, query_shots=1, rotations=True)


def test_source_without_label_feature():
    dataset = tf.data.Dataset.from_tensor_slices({"image": np.zeros((4, 3, 3, 1), np.uint8)})
    with pytest.raises(ValueError, match=r"`label_key`: 'label' is not a feature of `source`; "
                                         r"available features: \['image'\]"):
        km.data.episodes(dataset, ways=1, shots=1, query_shots=1, meta_batch_size=1)


def test_float_labels_rejected():
    dataset = source(np.zeros((4, 3, 3, 1), np.uint8), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"`label_key`: 'label' must hold integer labels"):
        km.data.episodes(dataset, ways=1, shots=1, query_shots=1, meta_batch_size=1)


def test_images_of_varying_size_need_image_size():
    dataset = tf.data.Dataset.from_generator(
        lambda: ((np.zeros((n, n, 1), np.uint8), n % 2) for n in range(3, 9)),
        output_signature=(tf.TensorSpec((None, None, 1), tf.uint8), tf.TensorSpec((), tf.int64)))
    with pytest.raises(ValueError, match=r"`image_size`: images must have one fixed shape"):
        km.data.episodes(dataset, ways=2, shots=1, query_shots=1, meta_batch_size=1)
    resized = km.data.episodes(dataset, ways=2, shots=1, query_shots=1, meta_batch_size=1,
                               image_size=(4, 4))
    assert resized.element_spec[0]["support_x"].shape == (1, 2, 4, 4, 1)


def test_bad_sources(omniglot_data_dir):
    with pytest.raises(ValueError, match="`source` must be a TFDS dataset name or a tf.data"):
        km.data.episodes([1, 2], ways=1, shots=1, query_shots=1, meta_batch_size=1)
    with pytest.raises(ValueError, match="`source`: .*no_such_dataset"):
        km.data.episodes("no_such_dataset", ways=1, shots=1, query_shots=1, meta_batch_size=1)
    common = dict(ways=1, shots=1, query_shots=1, meta_batch_size=1, data_dir=omniglot_data_dir)
    with pytest.raises(ValueError, match=r"`tfds_split` 'test' is not a split of omniglot_minimal; "
                                         r"available splits: \['train'\]"):
        km.data.episodes("omniglot_minimal", tfds_split="test", **common)
    with pytest.raises(ValueError, match=r"`label_key`: 'digit' is not a feature of `source`; "
                                         r"available features: \['alphabet', 'alphabet_char_id', "
                                         r"'drawer', 'image', 'label'\]"):
        km.data.episodes("omniglot_minimal", label_key="digit", **common)
    with pytest.raises(ValueError, match=r"`group_by`: 'script' is not a feature of `source`; "
                                         r"available features: \['alphabet', "):
        km.data.episodes("omniglot_minimal", group_by="script", **common)
    with pytest.raises(ValueError, match=r"`classes`: unknown alphabet 'Klingon'; available: "
                                         r"\['Balinese', .*'Tagalog'\]"):
        km.data.episodes("omniglot_minimal", classes=["Klingon"], group_by="alphabet", **common)


def test_streams_run_without_the_autotune_thread():
    """Deleting an iterator waits for tf.data's autotune thread to wake (up to a
    minute; `fit` stalled 10–23 s on return): no stream of the library starts it."""
    images, labels = synthetic([5] * 4)
    streams = {
        "episodes": episodes(images, labels),
        "sinusoid_episodes": km.data.sinusoid_episodes(),
        "labelled_batches": km.data.labelled_batches(source(images, labels), batch_size=4)[0],
    }
    for name, stream in streams.items():
        assert stream.options().autotune.enabled is False, name
        assert len(list(stream.take(3))) == 3, name


def grouped_source(drawers_per_class=4, groups=(0, 0, 1, 1, 1, 1), missing=None):
    """Feature dicts: class `c` in group `groups[c]`, one example per drawer
    (numbered 10, 20, ...), less the `(class, drawer index)` in `missing`."""
    rng = np.random.default_rng(3)
    rows = [(c, g, 10 * (d + 1)) for c, g in enumerate(groups) for d in range(drawers_per_class)
            if (c, d) != missing]
    images = rng.integers(0, 256, (len(rows), SIZE, SIZE, 1), dtype=np.uint8)
    labels, group, drawer = (np.array(column) for column in zip(*rows))
    dataset = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": labels, "group": group, "drawer": drawer})
    return dataset, images, labels, group, drawer


def test_within_group_and_drawer_episodes():
    dataset, images, labels, groups, drawers = grouped_source()
    index_of = {image.tobytes(): i for i, image in enumerate(images)}
    stream = km.data.episodes(dataset, ways=3, shots=1, query_shots=2, meta_batch_size=2,
                              group_by="group", within_group=True, drawer_key="drawer", seed=5)
    assert stream.element_spec[0]["support_x"].shape.as_list() == [2, None, SIZE, SIZE, 1]
    seen_groups, seen_drawers = set(), set()
    for inputs, query_y in stream.take(20).as_numpy_iterator():
        found = [[[index_of[np.round(image * 255).astype(np.uint8).tobytes()] for image in task]
                  for task in inputs[key]] for key in ("support_x", "query_x")]
        batch_groups = {int(groups[i]) for part in found for task in part for i in task}
        assert len(batch_groups) == 1
        group = batch_groups.pop()
        seen_groups.add(group)
        ways = {0: 2, 1: 3}[group]  # group 0 has 2 classes: capped
        assert inputs["support_x"].shape[1] == ways and query_y.shape[1] == 2 * ways
        for support, query, support_y, task_y in zip(*found, inputs["support_y"], query_y):
            assert len({int(drawers[i]) for i in support}) == 1
            assert len({int(drawers[i]) for i in query}) == 2
            assert not {int(drawers[i]) for i in support} & {int(drawers[i]) for i in query}
            seen_drawers.update(int(drawers[i]) for i in support + query)
            label_class = {}
            for indices, task_labels in ((support, support_y), (query, task_y)):
                for i, label in zip(indices, task_labels):
                    assert label_class.setdefault(int(label), int(labels[i])) == int(labels[i])
            assert len(set(label_class.values())) == ways
    assert seen_groups == {0, 1} and seen_drawers == {10, 20, 30, 40}


@pytest.mark.parametrize("kwargs, message", [
    ({"within_group": True}, r"`within_group=True` needs `group_by`"),
    ({"within_group": "yes", "group_by": "group"}, r"`within_group` must be a bool"),
    ({"drawer_key": "artist"}, r"`drawer_key`: 'artist' is not a feature of `source`"),
    ({"drawer_key": "drawer", "missing": (2, 1)},
     r"every class needs exactly one example of each drawer; class 2 has 0 of drawer number 1"),
])
def test_within_group_and_drawer_bad_input(kwargs, message):
    missing = kwargs.pop("missing", None)
    dataset = grouped_source(drawers_per_class=4 if missing is None else 5, missing=missing)[0]
    arguments = {"ways": 2, "shots": 1, "query_shots": 1, "meta_batch_size": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        km.data.episodes(dataset, **arguments)


def test_drawer_key_needs_feature_dicts():
    images, labels = synthetic([4] * 3)
    with pytest.raises(ValueError, match=r"`drawer_key`='drawer' needs a dataset of feature dicts"):
        km.data.episodes(source(images, labels), ways=2, shots=1, query_shots=1,
                         meta_batch_size=1, drawer_key="drawer")
