"""Fixtures and checks for the episode pipelines.

`check_task` verifies one task against an independent identification of its
images (which class and which example each image is), so the invariants are
checked on image content, not on what the pipeline says about itself.
"""

import collections

import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras_meta as km


def check_task(support_x, support_y, query_x, query_y, identify, ways, shots, query_shots):
    """Checks one task; `identify(image)` → `(class, example)` of an image.

    Returns:
      `{label: class}` for the task.
    """
    for labels, per_class in ((support_y, shots), (query_y, query_shots)):
        assert labels.dtype == np.int32
        counts = collections.Counter(labels.tolist())
        assert counts == {label: per_class for label in range(ways)}
    classes_of_label = collections.defaultdict(set)
    examples = []
    for images, labels in ((support_x, support_y), (query_x, query_y)):
        for image, label in zip(images, labels):
            cls, example = identify(image)
            classes_of_label[int(label)].add(cls)
            examples.append((cls, example))
    assert all(len(classes) == 1 for classes in classes_of_label.values())
    label_to_class = {label: classes.pop() for label, classes in classes_of_label.items()}
    assert len(set(label_to_class.values())) == ways, "the classes of a task must be distinct"
    assert len(set(examples)) == len(examples), "an example appears twice in one task"
    return label_to_class


def check_batches(dataset, batches, identify, ways, shots, query_shots):
    """Checks every task of the first `batches` elements; yields `{label: class}` per task."""
    for inputs, query_y in dataset.take(batches).as_numpy_iterator():
        for t in range(len(query_y)):
            yield check_task(inputs["support_x"][t], inputs["support_y"][t], inputs["query_x"][t],
                             query_y[t], identify, ways, shots, query_shots)


def rotation_lookup(images):
    """`{image bytes: (index, quarter turns)}` for `images` `[N, H, W, C]` and their rotations."""
    lookup = {}
    for index, image in enumerate(images):
        for turns in range(4):
            lookup[np.ascontiguousarray(np.rot90(image, turns)).tobytes()] = (index, turns)
    assert len(lookup) == 4 * len(images), "images (or their rotations) are not distinct"
    return lookup


@pytest.fixture(scope="session")
def omniglot_data_dir(tmp_path_factory):
    """A TFDS data directory with `omniglot_minimal` prepared in it."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder("omniglot_minimal", data_dir=data_dir).download_and_prepare()
    return data_dir


@pytest.fixture(scope="session")
def omniglot_reference(omniglot_data_dir):
    """The prepared `omniglot_minimal`, read with TFDS alone, and a lookup
    from each preprocessed drawing (and its rotations) to its index."""
    builder = tfds.builder("omniglot_minimal", data_dir=omniglot_data_dir)
    examples = tfds.as_numpy(builder.as_dataset(split="train", batch_size=-1))
    preprocessed = km.data.omniglot_preprocess(examples["image"]).numpy()
    alphabet_names = builder.info.features["alphabet"].names
    return {
        "image": examples["image"],
        "label": examples["label"],
        "alphabet": np.array([alphabet_names[i] for i in examples["alphabet"]]),
        "alphabet_char_id": examples["alphabet_char_id"],
        "drawer": examples["drawer"],
        "lookup": rotation_lookup(preprocessed),
    }
