"""Generated fixtures of the few-shot benchmarks' raw data, in their on-disk
formats: TFDS `cifar100` and `caltech_birds2011` prepared from generated
examples (by stand-in builders of the same name, version and features, so
the real TFDS builders read them), mini-ImageNet's pickle caches and its
CSV + images directory, and tiered-ImageNet's label and PNG pickles.

Every image is distinct and identifiable: `identity(image)` gives back what
made it.
"""

import io
import pickle

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from keras_meta.data.builders import class_splits


def png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def random_image(rng, shape):
    return rng.integers(0, 256, shape, dtype=np.uint8)


def prepare_stand_in(name, version, features, examples, data_dir):
    """Prepares TFDS dataset `name` in `data_dir` from `examples`
    (`{split: [(key, example)]}`) without registering a builder."""

    class StandIn(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version(version)

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            return {split: self._generate_examples(rows) for split, rows in examples.items()}

        def _generate_examples(self, rows):
            yield from rows

    StandIn.name = name
    StandIn(data_dir=str(data_dir)).download_and_prepare()


def cifar100(data_dir, per_class=20, test_per_class=4, seed=0):
    """A TFDS `cifar100` of `per_class` images per class (the last
    `test_per_class` in `test`); returns `{image bytes: (label, coarse)}`."""
    rng = np.random.default_rng(seed)
    coarse_of = {fine: class_splits.CIFAR100_COARSE_NAMES.index(coarse)
                 for coarse, fines in class_splits.CIFAR100_SUPERCLASSES.items() for fine in fines}
    examples, lookup = {"train": [], "test": []}, {}
    for label, fine in enumerate(class_splits.CIFAR100_FINE_NAMES):
        for index in range(per_class):
            image = random_image(rng, (32, 32, 3))
            split = "test" if index >= per_class - test_per_class else "train"
            key = f"{split}_{label:03d}_{index:02d}"
            examples[split].append((key, {"id": key, "image": image, "label": label,
                                          "coarse_label": coarse_of[fine]}))
            lookup[image.tobytes()] = (label, coarse_of[fine])
    features = tfds.features.FeaturesDict({
        "id": tfds.features.Text(),
        "image": tfds.features.Image(shape=(32, 32, 3)),
        "label": tfds.features.ClassLabel(num_classes=100),
        "coarse_label": tfds.features.ClassLabel(num_classes=20),
    })
    prepare_stand_in("cifar100", "3.0.2", features, examples, data_dir)
    return lookup


def caltech_birds2011(data_dir, per_class=2, seed=0):
    """A TFDS `caltech_birds2011` of `per_class` constant-colour images of
    various sizes per species; returns `{label: set of colours}`."""
    rng = np.random.default_rng(seed)
    examples, colours = {"train": [], "test": []}, {}
    for label in range(class_splits.CUB_NUM_CLASSES):
        for index in range(per_class):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            height, width = (int(v) for v in rng.integers(40, 120, 2))
            image = np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()
            split = "train" if index == 0 else "test"
            key = f"{label:03d}_{index}"
            examples[split].append((key, {
                "image": image, "image/filename": f"{label + 1:03d}.species/{key}.jpg",
                "label": label, "label_name": f"{label + 1:03d}.species",
                "bbox": tfds.features.BBox(0.0, 0.0, 1.0, 1.0),
                "segmentation_mask": np.zeros((height, width, 1), np.uint8)}))
            colours.setdefault(label, set()).add(colour)
    features = tfds.features.FeaturesDict({
        "image": tfds.features.Image(),
        "image/filename": tfds.features.Text(),
        "label": tfds.features.ClassLabel(num_classes=200),
        "label_name": tfds.features.Text(),
        "bbox": tfds.features.BBoxFeature(),
        "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
    })
    prepare_stand_in("caltech_birds2011", "0.2.0", features, examples, data_dir)
    return colours


def mini_imagenet_pickles(directory, per_class, seed=0):
    """The three pickle caches; returns `{image bytes: wnid}`."""
    rng = np.random.default_rng(seed)
    lookup = {}
    for split, stem in (("train", "train"), ("validation", "val"), ("test", "test")):
        wnids = class_splits.MINI_IMAGENET_SPLIT[split]
        images = random_image(rng, (len(wnids) * per_class, 84, 84, 3))
        order = rng.permutation(len(images))  # class_dict indices need not be contiguous
        class_dict = {wnid: sorted(order[i * per_class:(i + 1) * per_class].tolist())
                      for i, wnid in enumerate(wnids)}
        for wnid, indices in class_dict.items():
            for index in indices:
                lookup[images[index].tobytes()] = wnid
        with open(directory / f"mini-imagenet-cache-{stem}.pkl", "wb") as file:
            pickle.dump({"image_data": images, "class_dict": class_dict}, file)
    return lookup


def mini_imagenet_csv(directory, per_class, by_synset=False, seed=0):
    """The split CSVs and `images/` (flat, or ImageNet's `<wnid>/<wnid>_<n>.JPEG`
    with extra files around the chosen ranks); returns `{image bytes: (wnid, rank)}`
    of the 84×84 images the builder must produce. Images are constant colours."""
    rng = np.random.default_rng(seed)
    (directory / "images").mkdir(parents=True)
    lookup = {}
    for split, stem in (("train", "train"), ("validation", "val"), ("test", "test")):
        rows = ["filename,label"]
        for wnid in class_splits.MINI_IMAGENET_SPLIT[split]:
            ranks = sorted(rng.choice(np.arange(1, per_class + 3), per_class, replace=False))
            numbers = sorted(rng.choice(np.arange(1, 5000), per_class + 2, replace=False))
            colours = {}
            for rank in range(1, per_class + 3):
                colours[rank] = np.array(rng.integers(0, 256, 3), np.uint8)
            if by_synset:
                (directory / "images" / wnid).mkdir()
                for rank, number in zip(range(1, per_class + 3), numbers):
                    image = np.broadcast_to(colours[rank], (50, 70, 3)).copy()
                    (directory / "images" / wnid / f"{wnid}_{number}.JPEG").write_bytes(png(image))
            for rank in ranks:
                filename = f"{wnid}{rank:08d}.jpg"
                rows.append(f"{filename},{wnid}")
                image = np.broadcast_to(colours[rank], (84, 84, 3)).copy()
                if not by_synset:
                    (directory / "images" / filename).write_bytes(png(image))
                lookup[image.tobytes()] = (wnid, int(rank))
        (directory / f"{stem}.csv").write_text("\n".join(rows) + "\n")
    return lookup


def tiered_imagenet(directory, classes, super_categories, per_class, npz=False, seed=0):
    """Ren et al.'s release in miniature; returns `{image bytes: (split,
    wnid, super-category name)}`."""
    rng = np.random.default_rng(seed)
    lookup, serial = {}, 0
    for split, stem in (("train", "train"), ("validation", "val"), ("test", "test")):
        names = [f"n{serial + i:08d}" for i in range(classes[split])]
        supers = [f"{split}_super_{g}" for g in range(super_categories[split])]
        serial += classes[split]
        specific = np.repeat(np.arange(len(names)), per_class)
        general = specific % len(supers)
        order = rng.permutation(len(specific))
        specific, general = specific[order], general[order]
        images = random_image(rng, (len(specific), 84, 84, 3))
        for image, s, g in zip(images, specific, general):
            lookup[image.tobytes()] = (split, names[s], supers[g])
        labels = {"label_specific": specific, "label_general": general,
                  "label_specific_str": names, "label_general_str": supers}
        with open(directory / f"{stem}_labels.pkl", "wb") as file:
            pickle.dump(labels, file)
        if npz:
            np.savez(directory / f"{stem}_images.npz", images=images)
        else:
            encoded = [np.frombuffer(png(image), np.uint8) for image in images]
            with open(directory / f"{stem}_images_png.pkl", "wb") as file:
                pickle.dump(encoded, file)
    return lookup


def load_split(name, split, data_dir):
    """`{feature: numpy array}` of a whole TFDS split."""
    return tfds.as_numpy(tfds.load(name, split=split, data_dir=str(data_dir), batch_size=-1))


def resized(image, size):
    """What the builders do to a non-84×84 image (independent TF call)."""
    out = tf.image.resize(image, (size, size), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8).numpy()
