"""`tiered_imagenet`: Ren et al.'s tiered-ImageNet from a manual directory.

608 ImageNet synsets in 34 super-categories, split by super-category:
train 351 synsets / 20 super-categories, validation 97 / 6, test 160 / 8
(448,695 / 124,261 / 206,209 images, 84×84). The manual directory
(`<data_dir>/downloads/manual/tiered_imagenet/`, or `<data_dir>/downloads/manual/`)
holds Ren et al.'s release, the widely shared form:

- `train_labels.pkl`, `val_labels.pkl`, `test_labels.pkl`: dicts with
  `label_specific` (`[N]` synset index within the split), `label_general`
  (`[N]` super-category index within the split), `label_specific_str`
  (synset wnids) and `label_general_str` (super-category names);
- the images of each split, either `<split>_images_png.pkl` (the release: a
  list of PNG-encoded 84×84 images) or `<split>_images.npz` (the decompressed
  form many loaders write: key `images`, uint8 `[N, 84, 84, 3]`).

Pickles are unpickled safely (numpy arrays only) and checked against the
SHA-256 digests known for them (`PICKLE_SHA256`, and a `SHA256SUMS` file
beside them). The counts of synsets, super-categories and images of every
split are checked, and the splits' synsets and super-categories must be
disjoint; a directory that does not match is refused with an error saying
what is missing.
"""

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from keras_meta.data.builders import class_splits, manual_files, mini_imagenet

NAME = "tiered_imagenet"
IMAGE_SIZE = 84
# Read at preparation time (tests shrink them).
CLASSES = class_splits.TIERED_IMAGENET_CLASSES
SUPER_CATEGORIES = class_splits.TIERED_IMAGENET_SUPER_CATEGORIES
IMAGES = class_splits.TIERED_IMAGENET_IMAGES
# Published SHA-256 digests of the release's pickles: none recorded yet (list
# yours in a SHA256SUMS file beside them).
PICKLE_SHA256 = {}

FILE_STEMS = {"train": "train", "validation": "val", "test": "test"}
LABEL_KEYS = ("label_specific", "label_general", "label_specific_str", "label_general_str")

INSTRUCTIONS = """\
tiered-ImageNet is not downloadable by TFDS. Put Ren et al.'s release
(https://github.com/renmengye/few-shot-ssl-public, tiered-imagenet.tar) in the manual
directory (<data_dir>/downloads/manual/tiered_imagenet/): {train,val,test}_labels.pkl and
{train,val,test}_images_png.pkl (or the decompressed {train,val,test}_images.npz), and
optionally a SHA256SUMS file listing their digests.
"""

_CITATION = """\
@inproceedings{ren2018meta,
  title={Meta-Learning for Semi-Supervised Few-Shot Classification},
  author={Ren, Mengye and Triantafillou, Eleni and Ravi, Sachin and Snell, Jake and
          Swersky, Kevin and Tenenbaum, Joshua B and Larochelle, Hugo and Zemel, Richard S},
  booktitle={International Conference on Learning Representations},
  year={2018}
}
"""


def mismatch(directory, what):
    return manual_files.directory_mismatch(NAME, directory, what, INSTRUCTIONS)


def image_files(directory, split):
    """The images file of `split` present in `directory`: the PNG pickle, else the npz."""
    stem = FILE_STEMS[split]
    for name in (f"{stem}_images_png.pkl", f"{stem}_images.npz"):
        if (directory / name).is_file():
            return directory / name
    return None


def read_labels(directory):
    """`{split: labels dict}` after checking files, digests, counts and disjointness."""
    directory = pathlib.Path(directory)
    missing = []
    for split, stem in FILE_STEMS.items():
        if not (directory / f"{stem}_labels.pkl").is_file():
            missing.append(f"{stem}_labels.pkl")
        if image_files(directory, split) is None:
            missing.append(f"{stem}_images_png.pkl (or {stem}_images.npz)")
    if missing:
        raise mismatch(directory, f"missing {', '.join(missing)}")
    labels = {}
    for split, stem in FILE_STEMS.items():
        path = directory / f"{stem}_labels.pkl"
        manual_files.verify_sha256(path, PICKLE_SHA256)
        images = image_files(directory, split)
        if images.suffix == ".pkl":
            manual_files.verify_sha256(images, PICKLE_SHA256)
        labels[split] = _checked_labels(directory, path, split, manual_files.safe_load_pickle(path))
    for key, what in (("label_specific_str", "synsets"), ("label_general_str", "super-categories")):
        for i, first in enumerate(class_splits.SPLITS):
            for second in class_splits.SPLITS[i + 1:]:
                shared = set(labels[first][key]) & set(labels[second][key])
                if shared:
                    raise mismatch(directory, f"splits {first} and {second} share {len(shared)} "
                                   f"{what} ({manual_files.abridged(shared)})")
    return labels


def _checked_labels(directory, path, split, labels):
    if not isinstance(labels, dict) or not set(LABEL_KEYS) <= set(labels):
        raise mismatch(directory, f"{path.name} must be a dict with keys {list(LABEL_KEYS)}")
    specific = np.asarray(labels["label_specific"], np.int64)
    general = np.asarray(labels["label_general"], np.int64)
    names = [str(name) for name in labels["label_specific_str"]]
    super_names = [str(name) for name in labels["label_general_str"]]
    checks = (("images", len(specific), IMAGES[split]),
              ("synsets (label_specific_str)", len(names), CLASSES[split]),
              ("synsets with images", len(np.unique(specific)), CLASSES[split]),
              ("super-categories (label_general_str)", len(super_names), SUPER_CATEGORIES[split]),
              ("super-categories with images", len(np.unique(general)), SUPER_CATEGORIES[split]))
    for what, found, expected in checks:
        if found != expected:
            raise mismatch(directory, f"{path.name}: Ren et al.'s {split} split has {expected} "
                           f"{what}; found {found}")
    if (len(general) != len(specific) or specific.min() < 0 or general.min() < 0
            or specific.max() >= len(names) or general.max() >= len(super_names)):
        raise mismatch(directory, f"{path.name}: `label_specific` and `label_general` must be "
                       "equally long indices into `label_specific_str` and `label_general_str`")
    return {"specific": specific, "general": general, "label_specific_str": names,
            "label_general_str": super_names}


def read_images(directory, split):
    """Yields the images of `split` in file order: PNG bytes (release) or
    uint8 `[84, 84, 3]` arrays (npz)."""
    path = image_files(pathlib.Path(directory), split)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            if "images" not in archive.files:
                raise mismatch(directory, f"{path.name} has no `images` array")
            images = archive["images"]
        if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise mismatch(directory, f"{path.name}: `images` must be uint8 [N, 84, 84, 3]; it "
                           f"is {images.dtype} {list(images.shape)}")
        yield from images
        return
    for encoded in manual_files.safe_load_pickle(path):
        yield np.asarray(encoded, np.uint8).tobytes()


class TieredImagenet(tfds.core.GeneratorBasedBuilder):
    """tiered-ImageNet, Ren et al.'s split by 34 super-categories, 84×84.

    The TFDS dataset `tiered_imagenet`, prepared from a manual directory
    (see the module docstring for the files and checks); importing
    `keras_meta` registers it. Features: `image` (84×84×3 uint8), `label`
    (0..607: the split's synset index, offset by the synsets of the splits
    before it in train, validation, test order), `super_label` (0..33, the
    same for super-categories), `label_name` (the wnid) and
    `super_label_name`. Splits `train`, `validation`, `test`: 351 / 97 / 160
    synsets under 20 / 6 / 8 super-categories. Constructor arguments are
    TFDS's.

    Example:

    ```python
    import tensorflow_datasets as tfds

    dataset = tfds.load("tiered_imagenet", split="test", data_dir="~/tensorflow_datasets")
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Ren et al.'s release (PNG pickles or npz) and split."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS

    def _info(self):
        return self.dataset_info_from_configs(
            description="tiered-ImageNet (Ren et al. 2018): 608 synsets, 34 super-categories.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                             encoding_format="png"),
                "label": tfds.features.ClassLabel(num_classes=sum(CLASSES.values())),
                "super_label": tfds.features.ClassLabel(
                    num_classes=sum(SUPER_CATEGORIES.values())),
                "label_name": tfds.features.Text(),
                "super_label_name": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            homepage="https://github.com/renmengye/few-shot-ssl-public",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        directory = mini_imagenet.manual_root(dl_manager, NAME)
        labels = read_labels(directory)  # fails before anything is written
        offsets, super_offsets, generators = 0, 0, {}
        for split in class_splits.SPLITS:
            generators[split] = self._generate_examples(directory, split, labels[split], offsets,
                                                        super_offsets)
            offsets += CLASSES[split]
            super_offsets += SUPER_CATEGORIES[split]
        return generators

    def _generate_examples(self, directory, split, labels, offset, super_offset):
        expected = len(labels["specific"])
        count = 0
        for image in read_images(directory, split):
            if count == expected:
                raise mismatch(directory, f"the {split} images file holds more images than "
                               f"its labels file ({expected})")
            specific, general = labels["specific"][count], labels["general"][count]
            yield f"{split}_{count:06d}", {
                "image": mini_imagenet.to_84(image),
                "label": offset + int(specific),
                "super_label": super_offset + int(general),
                "label_name": labels["label_specific_str"][specific],
                "super_label_name": labels["label_general_str"][general],
            }
            count += 1
        if count != expected:
            raise mismatch(directory, f"the {split} images file holds {count} images; its "
                           f"labels file {expected}")
