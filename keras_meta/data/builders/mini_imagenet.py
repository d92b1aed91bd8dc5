"""`mini_imagenet`: Ravi & Larochelle's mini-ImageNet from a manual directory.

100 ImageNet synsets × 600 images, 84×84, split 64 / 16 / 20
(`class_splits.MINI_IMAGENET_SPLIT`). The manual directory
(`<data_dir>/downloads/manual/mini_imagenet/`, or `<data_dir>/downloads/manual/`,
or `download_config.manual_dir`) holds one of the forms people have:

1. Pickle caches: `mini-imagenet-cache-train.pkl`, `mini-imagenet-cache-val.pkl`
   (or `...-validation.pkl`) and `mini-imagenet-cache-test.pkl`, each a dict with
   `image_data` (uint8 `[N, 84, 84, 3]`) and `class_dict` (`{wnid: [indices]}`).
   They are unpickled safely (numpy arrays only) and checked against the
   SHA-256 digests known for them (`PICKLE_SHA256`, and a `SHA256SUMS` file
   beside them); a mismatch is refused.
2. Ravi & Larochelle's split files `train.csv`, `val.csv`, `test.csv` (columns
   `filename,label`, e.g. `n0153282900000005.jpg,n01532829`) with an
   `images/` directory holding either those files (the common flat
   download) or ImageNet's training images by synset,
   `images/<wnid>/<wnid>_<number>.JPEG`: there the CSV's file
   `<wnid><8 digits>.jpg` is the synset's image of that 1-based rank in
   increasing `<number>` order (as the mini-ImageNet generator scripts
   do). Images are resized to 84×84 (bilinear, antialiased).

Every form is checked before anything is written: the synsets of each split,
600 images per synset, and every image present and 84×84×3 (pickles) or
decodable; a directory that does not match is refused with an error saying
what is missing.
"""

import csv
import pathlib
import re

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_meta.data.builders import class_splits, manual_files

NAME = "mini_imagenet"
IMAGE_SIZE = 84
# Read at preparation time (tests shrink them).
SPLIT = class_splits.MINI_IMAGENET_SPLIT
IMAGES_PER_CLASS = class_splits.MINI_IMAGENET_IMAGES_PER_CLASS
# Published SHA-256 digests of the pickle caches. None are recorded yet: their
# digests are not published beside the files; list yours in a SHA256SUMS file.
PICKLE_SHA256 = {}

FILE_STEMS = {"train": "train", "validation": "val", "test": "test"}
PICKLE_NAMES = {split: (f"mini-imagenet-cache-{stem}.pkl",) for split, stem in FILE_STEMS.items()}
PICKLE_NAMES["validation"] += ("mini-imagenet-cache-validation.pkl",)
CSV_NAMES = {split: f"{stem}.csv" for split, stem in FILE_STEMS.items()}

INSTRUCTIONS = """\
mini-ImageNet is not downloadable by TFDS. Put one of these in the manual
directory (<data_dir>/downloads/manual/mini_imagenet/):
  - the pickle caches mini-imagenet-cache-train.pkl, mini-imagenet-cache-val.pkl and
    mini-imagenet-cache-test.pkl (optionally a SHA256SUMS file listing their digests); or
  - Ravi & Larochelle's split files train.csv, val.csv, test.csv
    (https://github.com/twitter/meta-learning-lstm/tree/master/data/miniImagenet) and an
    images/ directory holding the 60,000 files they name, or ImageNet's training images
    by synset (images/<wnid>/<wnid>_<number>.JPEG, from ILSVRC2012_img_train.tar).
"""

_CITATION = """\
@inproceedings{ravi2017optimization,
  title={Optimization as a Model for Few-Shot Learning},
  author={Ravi, Sachin and Larochelle, Hugo},
  booktitle={International Conference on Learning Representations},
  year={2017}
}
"""
_CSV_FILE = re.compile(r"(n\d{8})(\d{8})\.jpg")
_IMAGENET_FILE = re.compile(r"(n\d{8})_(\d+)\.jpe?g", re.IGNORECASE)


def manual_root(dl_manager, name):
    """The manual directory of dataset `name`: its own subdirectory when there is one."""
    root = pathlib.Path(dl_manager.manual_dir)
    return root / name if (root / name).is_dir() else root


def mismatch(directory, what):
    return manual_files.directory_mismatch(NAME, directory, what, INSTRUCTIONS)


def all_classes():
    """Every synset, train then validation then test, each sorted: the label names."""
    return tuple(wnid for split in class_splits.SPLITS for wnid in SPLIT[split])


def plan(directory):
    """Checks `directory` and returns `{split: () -> iterator of (key, wnid,
    image)}` (image: uint8 `[84, 84, 3]` array or encoded bytes).

    The CSV form's files and the pickles' digests are all checked here,
    before any example is read; a pickle's contents when it is read.
    """
    directory = pathlib.Path(directory)
    if detect_form(directory) == "pickle":
        paths = {split: next(directory / name for name in names if (directory / name).is_file())
                 for split, names in PICKLE_NAMES.items()}
        for path in paths.values():
            manual_files.verify_sha256(path, PICKLE_SHA256)
        return {split: (lambda path=path, split=split: _pickle_split(directory, path, split))
                for split, path in paths.items()}
    planned = {split: _csv_paths(directory, split) for split in class_splits.SPLITS}
    return {split: (lambda paths=paths: ((key, wnid, path.read_bytes())
                                         for key, wnid, path in paths))
            for split, paths in planned.items()}


def detect_form(directory):
    """"pickle" or "csv"; raises the mismatch error naming the missing files."""
    pickles = {split: [directory / name for name in names if (directory / name).is_file()]
               for split, names in PICKLE_NAMES.items()}
    csvs = {split: directory / name for split, name in CSV_NAMES.items()}
    if any(pickles.values()):
        missing = [" or ".join(PICKLE_NAMES[split]) for split, found in pickles.items()
                   if not found]
        if missing:
            raise mismatch(directory, f"pickle caches missing: {', '.join(missing)}")
        return "pickle"
    if any(path.is_file() for path in csvs.values()):
        missing = [path.name for path in csvs.values() if not path.is_file()]
        if not (directory / "images").is_dir():
            missing.append("images/")
        if missing:
            raise mismatch(directory, f"split files missing: {', '.join(missing)}")
        return "csv"
    raise mismatch(directory, "neither the pickle caches (mini-imagenet-cache-{train,val,test}"
                   ".pkl) nor the split files (train.csv, val.csv, test.csv) are there")


def _check_classes(directory, split, found, source):
    expected = set(SPLIT[split])
    missing, extra = expected - set(found), set(found) - expected
    if missing or extra:
        parts = [f"{len(missing)} {split} synsets missing ({manual_files.abridged(missing)})"
                 if missing else "",
                 f"{len(extra)} synsets not of Ravi & Larochelle's {split} split "
                 f"({manual_files.abridged(extra)})" if extra else ""]
        raise mismatch(directory, f"{source}: " + "; ".join(p for p in parts if p))
    short = {wnid: count for wnid, count in found.items() if count != IMAGES_PER_CLASS}
    if short:
        listed = manual_files.abridged(f"{wnid} ({count})" for wnid, count in short.items())
        raise mismatch(directory, f"{source}: each synset needs {IMAGES_PER_CLASS} images; "
                       f"these have another count: {listed}")


def _pickle_split(directory, path, split):
    cache = manual_files.safe_load_pickle(path)
    if not isinstance(cache, dict) or not {"image_data", "class_dict"} <= set(cache):
        raise mismatch(directory, f"{path.name} is not a dict with `image_data` and "
                       "`class_dict`")
    images, class_dict = np.asarray(cache["image_data"]), cache["class_dict"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE,
                                                                           IMAGE_SIZE, 3):
        raise mismatch(directory, f"{path.name}: `image_data` must be uint8 [N, 84, 84, 3]; "
                       f"it is {images.dtype} {list(images.shape)}")
    _check_classes(directory, split, {wnid: len(indices) for wnid, indices in
                                      class_dict.items()}, path.name)
    indices = np.concatenate([np.asarray(class_dict[w], np.int64) for w in SPLIT[split]])
    if sorted(indices.tolist()) != list(range(len(images))):
        raise mismatch(directory, f"{path.name}: `class_dict` must index every image of "
                       f"`image_data` ({len(images)}) exactly once")
    for wnid in SPLIT[split]:
        for index in class_dict[wnid]:
            yield f"{wnid}_{int(index):05d}", wnid, images[int(index)]


def _read_csv(directory, split):
    path = directory / CSV_NAMES[split]
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows or [cell.strip() for cell in rows[0]] != ["filename", "label"]:
        raise mismatch(directory, f"{path.name} must start with the header 'filename,label'")
    entries = []
    for number, row in enumerate(rows[1:], 2):
        match = _CSV_FILE.fullmatch(row[0].strip()) if len(row) == 2 else None
        if not match or match.group(1) != row[1].strip():
            raise mismatch(directory, f"{path.name}:{number}: expected "
                           f"'<wnid><8 digits>.jpg,<wnid>'; found {','.join(row)!r}")
        entries.append((row[0].strip(), row[1].strip(), int(match.group(2))))
    counts = {}
    for _, wnid, _ in entries:
        counts[wnid] = counts.get(wnid, 0) + 1
    _check_classes(directory, split, counts, path.name)
    return entries


def _imagenet_files(images_dir, wnid):
    """`images/<wnid>/` files in increasing number order."""
    files = []
    for path in (images_dir / wnid).iterdir():
        match = _IMAGENET_FILE.fullmatch(path.name)
        if match and match.group(1) == wnid:
            files.append((int(match.group(2)), path))
    return [path for _, path in sorted(files)]


def _csv_paths(directory, split):
    """`[(key, wnid, image path)]` of `split`'s CSV, every file checked present."""
    entries = _read_csv(directory, split)
    images_dir = directory / "images"
    by_synset = (images_dir / entries[0][1]).is_dir()
    missing, paths = [], []
    ranked = {}
    for filename, wnid, rank in entries:
        if by_synset:
            if wnid not in ranked:
                ranked[wnid] = _imagenet_files(images_dir, wnid) if (images_dir / wnid).is_dir() \
                    else []
            files = ranked[wnid]
            if not 1 <= rank <= len(files):
                missing.append(f"{wnid}/ image of rank {rank} (it has {len(files)})")
                continue
            paths.append((filename, wnid, files[rank - 1]))
        else:
            path = images_dir / filename
            if not path.is_file():
                missing.append(filename)
                continue
            paths.append((filename, wnid, path))
    if missing:
        layout = "images/<wnid>/<wnid>_<number>.JPEG" if by_synset else "images/<file name>"
        raise mismatch(directory, f"{len(missing)} images of {CSV_NAMES[split]} missing from "
                       f"{layout}: {manual_files.abridged(missing)}")
    return [(filename[:-len(".jpg")], wnid, path) for filename, wnid, path in paths]


def to_84(image):
    """uint8 `[84, 84, 3]` from an array or encoded bytes (any size, resized)."""
    if isinstance(image, bytes):
        image = tf.io.decode_image(image, channels=3, expand_animations=False)
    image = tf.convert_to_tensor(image)
    if tuple(image.shape) != (IMAGE_SIZE, IMAGE_SIZE, 3):
        image = tf.image.resize(image, (IMAGE_SIZE, IMAGE_SIZE), antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return image.numpy()


class MiniImagenet(tfds.core.GeneratorBasedBuilder):
    """mini-ImageNet, Ravi & Larochelle's 64 / 16 / 20 synset split, 84×84.

    The TFDS dataset `mini_imagenet`, prepared from a manual directory (see
    the module docstring for the accepted forms and checks); importing
    `keras_meta` registers it. Features: `image` (84×84×3 uint8), `label`
    (0..99 over the synsets, train then validation then test, each sorted;
    its names are the wnids). Splits `train`, `validation`, `test`: 64, 16
    and 20 disjoint synsets × 600 images. Constructor arguments are TFDS's.

    Example:

    ```python
    import tensorflow_datasets as tfds

    dataset = tfds.load("mini_imagenet", split="train", data_dir="~/tensorflow_datasets")
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Ravi & Larochelle's split, from CSVs + images or pickle caches."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS

    def _info(self):
        return self.dataset_info_from_configs(
            description="mini-ImageNet (Vinyals et al. 2016) in Ravi & Larochelle's split.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                             encoding_format="png"),
                "label": tfds.features.ClassLabel(names=all_classes()),
            }),
            supervised_keys=("image", "label"),
            homepage="https://github.com/twitter/meta-learning-lstm",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        readers = plan(manual_root(dl_manager, NAME))  # fails before anything is written
        return {split: self._generate_examples(reader) for split, reader in readers.items()}

    def _generate_examples(self, reader):
        for key, wnid, image in reader():
            yield key, {"image": to_84(image), "label": wnid}
