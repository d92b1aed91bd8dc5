"""`km.data.omniglot_episodes` and `km.data.omniglot_preprocess`: episodes are
matched back to the TFDS examples by image content (rotations included), the
preprocessing is compared with PIL, and full Omniglot runs on TFDS mock data."""

import collections
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import keras_meta as km
from keras_meta.data import omniglot
from tests.data_fixtures import check_batches, rotation_lookup

SPLIT_ALPHABETS = {
    "train": {"Balinese", "Early_Aramaic", "Greek", "Korean", "Japanese_(katakana)"},
    "validation": {"Latin"},
    "test": {"Sanskrit", "Tagalog"},
}


def reference_preprocess(image):
    """Independent Omniglot preprocessing with PIL: channel mean, float
    bilinear (antialiased) resize to 28×28, strokes = 1."""
    gray = image.astype(np.float32).mean(axis=-1)
    resized = np.asarray(Image.fromarray(gray, "F").resize((28, 28), Image.BILINEAR))
    return (1.0 - resized / 255.0)[..., np.newaxis]


@pytest.mark.parametrize("shape", [(105, 105, 3), (105, 105, 1), (50, 70, 1), (20, 20, 3)])
def test_preprocess_matches_pil(shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    if shape == (105, 105, 3):  # an Omniglot drawing: binary, equal channels
        image = np.repeat(rng.choice(np.array([0, 255], np.uint8), shape[:2])[..., None], 3, -1)
    result = km.data.omniglot_preprocess(image).numpy()
    assert result.shape == (28, 28, 1) and result.dtype == np.float32
    assert result.min() >= 0.0 and result.max() <= 1.0
    np.testing.assert_allclose(result, reference_preprocess(image), atol=2e-3)


def test_preprocess_inverts_and_batches():
    white, black = np.full((2, 40, 40, 1), 255, np.uint8), np.zeros((40, 40, 3), np.uint8)
    assert np.all(km.data.omniglot_preprocess(white).numpy() == 0.0)  # background exactly 0
    np.testing.assert_allclose(km.data.omniglot_preprocess(black).numpy(), 1.0, rtol=1e-6)  # strokes
    batch = np.random.default_rng(0).integers(0, 256, (3, 60, 60, 1), dtype=np.uint8)
    batched = km.data.omniglot_preprocess(batch).numpy()
    assert batched.shape == (3, 28, 28, 1)
    for image, result in zip(batch, batched):
        np.testing.assert_array_equal(km.data.omniglot_preprocess(image).numpy(), result)


@pytest.mark.parametrize("image, message", [
    (np.zeros((28, 28, 1), np.float32), "`image` must be uint8; received dtype float32"),
    (np.zeros((28, 28, 2), np.uint8), r"`image` must have shape \[H, W, C\] .* C = 1 or 3"),
    (np.zeros((28, 28), np.uint8), r"received shape \(28, 28\)"),
])
def test_preprocess_bad_input(image, message):
    with pytest.raises(ValueError, match=message):
        km.data.omniglot_preprocess(image)


@pytest.fixture(scope="module")
def minimal_streams(omniglot_data_dir):
    """5-way 1-shot 15-query streams of the three splits (defaults otherwise)."""
    return {split: km.data.omniglot_episodes(split, data_dir=omniglot_data_dir)
            for split in SPLIT_ALPHABETS}


def identify_in(reference):
    def identify(image):
        index, turns = reference["lookup"][image.tobytes()]
        return (int(reference["label"][index]), turns), index
    return identify


def test_minimal_episodes_invariants_and_disjoint_splits(minimal_streams, omniglot_reference):
    identify = identify_in(omniglot_reference)
    drawn = {}
    for split, stream in minimal_streams.items():
        assert stream.element_spec[0]["support_x"].shape == (32, 5, 28, 28, 1)
        classes = set()
        for label_to_class in check_batches(stream, 8, identify, ways=5, shots=1, query_shots=15):
            classes.update(label_to_class.values())
        drawn[split] = classes
        labels = {label for label, _ in classes}
        alphabets = {omniglot_reference["alphabet"][omniglot_reference["label"] == label][0]
                     for label in labels}
        assert alphabets == SPLIT_ALPHABETS[split]
        turns = {t for _, t in classes}
        assert turns == ({0, 1, 2, 3} if split == "train" else {0})
    # Disjoint by content: every image, rotated or not, was matched to one TFDS example.
    base_labels = {split: {label for label, _ in classes} for split, classes in drawn.items()}
    assert not base_labels["train"] & base_labels["validation"]
    assert not base_labels["train"] & base_labels["test"]
    assert not base_labels["validation"] & base_labels["test"]
    assert len(base_labels["validation"]) == 26  # 8 × 32 × 5 draws see every Latin character


def test_minimal_class_counts(omniglot_data_dir, omniglot_reference):
    characters = collections.Counter(
        str(a) for a, _ in set(zip(omniglot_reference["alphabet"], omniglot_reference["label"])))
    for split, rotations in (("train", True), ("validation", False), ("test", False)):
        count = sum(characters[a] for a in SPLIT_ALPHABETS[split]) * (4 if rotations else 1)
        with pytest.raises(ValueError, match=f"`ways`={count + 1} exceeds the {count} classes"):
            km.data.omniglot_episodes(split, ways=count + 1, data_dir=omniglot_data_dir)
    assert sum(characters[a] for a in SPLIT_ALPHABETS["train"]) == 157
    stream = km.data.omniglot_episodes("train", rotations=False, ways=157, shots=1, query_shots=1,
                                       meta_batch_size=1, data_dir=omniglot_data_dir)
    inputs, _ = next(iter(stream))
    identify = identify_in(omniglot_reference)
    assert {identify(image)[0] for image in inputs["support_x"].numpy()[0]} == {
        (int(label), 0) for label, alphabet in zip(omniglot_reference["label"],
                                                   omniglot_reference["alphabet"])
        if alphabet in SPLIT_ALPHABETS["train"]}


def test_minimal_determinism(minimal_streams, omniglot_data_dir):
    again = km.data.omniglot_episodes("test", data_dir=omniglot_data_dir)
    other = km.data.omniglot_episodes("test", seed=1, data_dir=omniglot_data_dir)
    first, second, third = (next(iter(s))[0]["query_x"].numpy()
                            for s in (minimal_streams["test"], again, other))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, third)


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "valid"}, r"`split` must be one of \['train', 'validation', 'test'\]; received 'valid'"),
    ({"split": "train", "source": "mnist"},
     r"`source` must be one of \['omniglot_minimal', 'omniglot'\]; received 'mnist'"),
    ({"split": "test", "shots": 10, "query_shots": 11},
     r"`shots` \+ `query_shots` = 21 exceeds the examples of class \d+, which has 20"),
    ({"split": "validation", "ways": 5, "meta_batch_size": 0}, r"`meta_batch_size` must be an int >= 1"),
])
def test_omniglot_bad_input(kwargs, message, omniglot_data_dir):
    with pytest.raises(ValueError, match=message):
        km.data.omniglot_episodes(data_dir=omniglot_data_dir, **kwargs)


def test_maml_character_split():
    split = omniglot.maml_character_split()
    sizes = {name: len(labels) for name, labels in split.items()}
    assert sizes == {"train": 1100, "validation": 100, "test": 423}
    assert sizes["train"] + sizes["validation"] == 1200  # the paper's meta-training characters
    union = set().union(*split.values())
    assert union == set(range(1623)) and sum(sizes.values()) == len(union)
    assert split == omniglot.maml_character_split()


DRAWINGS = 2


@pytest.fixture(scope="module")
def mock_omniglot():
    """Fake full Omniglot: `DRAWINGS` random binary drawings of each of the 1,623 characters."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1623), DRAWINGS)
    images = np.repeat(rng.choice(np.array([0, 255], np.uint8), (len(labels), 105, 105, 1)), 3, -1)
    features = {"image": images, "label": labels, "alphabet": labels % 50,
                "alphabet_char_id": labels // 50}

    def as_dataset(self, split, **kwargs):
        assert split == "train+test"  # background and evaluation sets together
        return tf.data.Dataset.from_tensor_slices(features)

    lookup = rotation_lookup(km.data.omniglot_preprocess(images).numpy())
    return as_dataset, {"label": labels, "lookup": lookup}


def test_full_omniglot_with_mock_data(mock_omniglot, tmp_path):
    as_dataset, reference = mock_omniglot
    split = omniglot.maml_character_split()
    identify = identify_in(reference)
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        for name, rotations in (("train", True), ("validation", False), ("test", False)):
            stream = km.data.omniglot_episodes(name, source="omniglot", ways=20, shots=1,
                                               query_shots=1, meta_batch_size=16,
                                               data_dir=str(tmp_path))
            classes = set()
            for label_to_class in check_batches(stream, 4, identify, 20, 1, 1):
                classes.update(label_to_class.values())
            assert {label for label, _ in classes} <= set(split[name])
            assert {turns for _, turns in classes} == ({0, 1, 2, 3} if rotations else {0})
        with pytest.raises(ValueError, match=r"`ways`=101 exceeds the 100 classes"):
            km.data.omniglot_episodes("validation", source="omniglot", ways=101,
                                      data_dir=str(tmp_path))
        with pytest.raises(ValueError, match=rf"`shots` \+ `query_shots` = {DRAWINGS + 1} exceeds"):
            km.data.omniglot_episodes("test", source="omniglot", shots=1, query_shots=DRAWINGS,
                                      data_dir=str(tmp_path))


def test_maml_fits_on_omniglot_train(omniglot_data_dir):
    keras.utils.set_random_seed(0)
    train = km.data.omniglot_episodes("train", meta_batch_size=2, query_shots=2,
                                      data_dir=omniglot_data_dir)
    model = km.MAML(km.learners.conv4(5, filters=8), inner_lr=0.4, inner_steps=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(train, steps_per_epoch=3, epochs=1, verbose=0)
    assert all(math.isfinite(loss) for loss in history.history["loss"])


def test_within_alphabet_trials(omniglot_data_dir, omniglot_reference):
    """Lake et al.'s 20-way one-shot trials: one alphabet per batch (Tagalog's
    17 characters capped), the support set one drawer's drawing of each
    character, the queries another drawer's drawings of the same characters."""
    stream = km.data.omniglot_episodes("test", ways=20, shots=1, query_shots=1, meta_batch_size=3,
                                       within_alphabet=True, seed=4, data_dir=omniglot_data_dir)
    assert stream.element_spec[0]["support_x"].shape.as_list() == [3, None, 28, 28, 1]
    characters = collections.Counter(
        str(a) for a, _ in set(zip(omniglot_reference["alphabet"], omniglot_reference["label"])))
    identify = identify_in(omniglot_reference)
    seen_alphabets, seen_drawers = collections.Counter(), set()
    for inputs, query_y in stream.take(12).as_numpy_iterator():
        batch_alphabets = set()
        for support_x, support_y, query_x, labels in zip(
                inputs["support_x"], inputs["support_y"], inputs["query_x"], query_y):
            drawers, character_of_label = [], []
            for images, task_labels in ((support_x, support_y), (query_x, labels)):
                indices = [identify(image)[1] for image in images]
                drawers.append(set(omniglot_reference["drawer"][indices]))
                batch_alphabets.update(omniglot_reference["alphabet"][indices])
                character_of_label.append(dict(zip(task_labels.tolist(),
                                                   omniglot_reference["label"][indices])))
            assert len(drawers[0]) == len(drawers[1]) == 1 and drawers[0] != drawers[1]
            seen_drawers.update(drawers[0] | drawers[1])
            assert character_of_label[0] == character_of_label[1]  # same characters, same labels
            assert len(set(character_of_label[0].values())) == len(support_y)
            assert sorted(support_y.tolist()) == sorted(labels.tolist()) == list(range(len(support_y)))
        assert len(batch_alphabets) == 1
        alphabet = batch_alphabets.pop()
        assert inputs["support_x"].shape[1] == min(20, characters[alphabet])
        seen_alphabets[alphabet] += 1
    assert set(seen_alphabets) == SPLIT_ALPHABETS["test"]
    assert characters["Tagalog"] == 17 and len(seen_drawers) > 10
    again = km.data.omniglot_episodes("test", ways=20, shots=1, query_shots=1, meta_batch_size=3,
                                      within_alphabet=True, seed=4, data_dir=omniglot_data_dir)
    for first, second in zip(stream.take(3).as_numpy_iterator(), again.take(3).as_numpy_iterator()):
        np.testing.assert_array_equal(first[0]["query_x"], second[0]["query_x"])


def test_within_alphabet_training_stream_is_static_and_rotates_within_the_alphabet(
        omniglot_data_dir, omniglot_reference):
    stream = km.data.omniglot_episodes("train", ways=5, shots=2, query_shots=3, meta_batch_size=4,
                                       within_alphabet=True, data_dir=omniglot_data_dir)
    assert stream.element_spec[0]["support_x"].shape == (4, 10, 28, 28, 1)
    identify = identify_in(omniglot_reference)
    turns = set()
    for inputs, query_y in stream.take(6).as_numpy_iterator():
        alphabets = set()
        for support_x, query_x in zip(inputs["support_x"], inputs["query_x"]):
            found = [identify(image) for image in support_x], [identify(image) for image in query_x]
            support_drawers, query_drawers = ({int(omniglot_reference["drawer"][i]) for _, i in f}
                                              for f in found)
            assert len(support_drawers) == 2 and len(query_drawers) == 3
            assert not support_drawers & query_drawers
            alphabets.update(omniglot_reference["alphabet"][[i for _, i in found[0] + found[1]]])
            turns.update(t for (_, t), _ in found[0])
        assert len(alphabets) == 1 and alphabets <= SPLIT_ALPHABETS["train"]
    assert turns == {0, 1, 2, 3}


@pytest.mark.parametrize("kwargs, message", [
    ({"source": "omniglot"}, r"`within_alphabet=True` needs source='omniglot_minimal'"),
    ({"within_alphabet": 1}, r"`within_alphabet` must be a bool"),
    ({"shots": 10, "query_shots": 11}, r"`shots` \+ `query_shots` = 21 exceeds the examples"),
])
def test_within_alphabet_bad_input(kwargs, message, omniglot_data_dir):
    with pytest.raises(ValueError, match=message):
        km.data.omniglot_episodes("test", **{"within_alphabet": True, "data_dir": omniglot_data_dir,
                                             **kwargs})


def test_few_shot_evaluation_of_within_alphabet_trials(omniglot_data_dir):
    """Batches of 20 and of 17 ways evaluate correctly: the callback's accuracy
    equals nearest-prototype accuracy computed in numpy on the same tasks."""
    stream = km.data.omniglot_episodes("test", ways=20, shots=1, query_shots=1, meta_batch_size=2,
                                       within_alphabet=True, seed=2, data_dir=omniglot_data_dir)
    keras.utils.set_random_seed(0)
    embedding = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(16)])
    model = km.ProtoNet(embedding)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = km.callbacks.FewShotEvaluation(stream, num_tasks=16, prefix="within")
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    expected, ways = [], set()
    for inputs, query_y in stream.take(8).as_numpy_iterator():
        ways.add(query_y.shape[1])
        for support_x, support_y, query_x, labels in zip(
                inputs["support_x"], inputs["support_y"], inputs["query_x"], query_y):
            support, query = (embedding(x).numpy().astype(np.float64) for x in (support_x, query_x))
            prototypes = support[np.argsort(support_y)]  # one shot: the support embeddings
            distances = ((query[:, None] - prototypes[None]) ** 2).sum(-1)
            expected.append(np.mean(distances.argmin(-1) == labels))
    assert ways == {17, 20}
    np.testing.assert_allclose(callback.results.accuracy, expected)
    assert logs["within_accuracy"] == pytest.approx(np.mean(expected))
