"""Episodes of the few-shot image benchmarks: mini-ImageNet, tiered-ImageNet,
CIFAR-FS, FC100 and CUB (TFDS builders in `keras_meta.data.builders`).

Each TFDS split holds exactly its benchmark split's classes, so episodes of
"train", "validation" and "test" never share a class. Pixels: uint8 → [0, 1]
→ normalised per channel by the mean and standard deviation of the train
split's pixels (computed from the prepared data on first use and cached in a
JSON file beside it, `train_statistics.json`), then resized (bilinear,
antialiased) to `image_size`.

Native sizes (the default `image_size`): mini-ImageNet, tiered-ImageNet and
CUB 84×84×3; CIFAR-FS and FC100 32×32×3.
"""

import json
import pathlib

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_meta.data import sampling
from keras_meta.data.builders import class_splits

IMAGE_SIZES = {"mini_imagenet": 84, "tiered_imagenet": 84, "cifar_fs": 32, "fc100": 32,
               "cub": 84}
BENCHMARKS = tuple(IMAGE_SIZES)
STATISTICS_FILE = "train_statistics.json"
_STATISTICS = {}  # (data directory of the prepared dataset) → (mean, std)


def _check_name(name):
    if name not in IMAGE_SIZES:
        raise ValueError(f"`name` must be one of {list(BENCHMARKS)}; received {name!r}.")


def prepared_builder(name, data_dir=None, manual_dir=None):
    """The TFDS builder of benchmark `name`, prepared (from `manual_dir` for
    mini-/tiered-ImageNet; TFDS's `<data_dir>/downloads/manual` by default)."""
    _check_name(name)
    builder = tfds.builder(name, data_dir=data_dir)
    config = None
    if manual_dir is not None:
        manual_dir = pathlib.Path(manual_dir).expanduser()
        if not manual_dir.is_dir():
            raise ValueError(f"`manual_dir`: {manual_dir} is not a directory.")
        config = tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    builder.download_and_prepare(download_config=config)
    return builder


def train_statistics(name, data_dir=None, manual_dir=None):
    """Per-channel mean and standard deviation of benchmark `name`'s train
    split, over all its pixels in [0, 1] at the stored size.

    Args:
      name: one of "mini_imagenet", "tiered_imagenet", "cifar_fs", "fc100", "cub".
      data_dir: TFDS data directory (TFDS's default when None).
      manual_dir: where mini-/tiered-ImageNet's files are, when not in
        `<data_dir>/downloads/manual/<name>`.

    Returns:
      `(mean, std)`, each float32 `[3]`.

    Example:

    ```python
    import os

    data_dir = os.path.expanduser("~/tensorflow_datasets")
    if os.path.isdir(os.path.join(data_dir, "cifar100")):
        mean, std = km.data.train_statistics("cifar_fs", data_dir=data_dir)  # [3], [3]
    ```
    """
    builder = prepared_builder(name, data_dir, manual_dir)
    key = str(builder.data_dir)
    if key not in _STATISTICS:
        path = pathlib.Path(builder.data_dir) / STATISTICS_FILE
        if path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            stats = (np.asarray(saved["mean"], np.float32), np.asarray(saved["std"], np.float32))
        else:
            stats = _pixel_statistics(builder)
            path.write_text(json.dumps({"mean": stats[0].tolist(), "std": stats[1].tolist()}),
                            encoding="utf-8")
        _STATISTICS[key] = stats
    return _STATISTICS[key]


def _pixel_statistics(builder):
    total = np.zeros(3, np.float64)
    squares = np.zeros(3, np.float64)
    count = 0
    for images in tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)
                                .map(lambda example: example["image"]).batch(1024)):
        pixels = images.reshape(-1, 3).astype(np.float64) / 255.0
        total += pixels.sum(0)
        squares += np.square(pixels).sum(0)
        count += len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def normalizer(mean, std):
    """`uint8 image → float32 (image / 255 - mean) / std`, per channel."""
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)

    def normalize(image):
        return (tf.image.convert_image_dtype(image, tf.float32) - mean) / std
    return normalize


def benchmark_preprocess(name, *, data_dir=None, manual_dir=None, image_size=None):
    """What the model sees of a raw image of benchmark `name`.

    Args:
      name: one of "mini_imagenet", "tiered_imagenet", "cifar_fs", "fc100", "cub".
      data_dir, manual_dir: as `train_statistics`.
      image_size: int or `(height, width)`; the benchmark's native size when None.

    Returns:
      A function of TensorFlow ops: uint8 `[H, W, 3]` or `[N, H, W, 3]` (any
      size) → float32 `[image_size, image_size, 3]` (or `[N, ...]`), resized
      (bilinear, antialiased) and normalised by the train split's statistics.

    Example:

    ```python
    import os

    data_dir = os.path.expanduser("~/tensorflow_datasets")
    if os.path.isdir(os.path.join(data_dir, "cifar100")):
        preprocess = km.data.benchmark_preprocess("fc100", data_dir=data_dir)
        features = preprocess(np.zeros((2, 32, 32, 3), "uint8"))  # [2, 32, 32, 3] float32
    ```
    """
    _check_name(name)
    size = image_size if image_size is not None else IMAGE_SIZES[name]
    size = (size, size) if isinstance(size, int) else tuple(size)
    normalize = normalizer(*train_statistics(name, data_dir, manual_dir))

    def preprocess(image):
        image = tf.convert_to_tensor(image)
        if image.dtype != tf.uint8:
            raise ValueError(f"`image` must be uint8; received dtype {image.dtype.name}.")
        resized = tf.image.resize(normalize(image), size, antialias=True)
        return tf.cast(resized, tf.float32)
    return preprocess


def benchmark_episodes(name, split, *, ways=5, shots=1, query_shots=15, meta_batch_size=4,
                       seed=0, data_dir=None, manual_dir=None, image_size=None, start=0):
    """Episodes of benchmark `name`'s `split` ("train", "validation" or "test").

    Args:
      name: one of "mini_imagenet", "tiered_imagenet", "cifar_fs", "fc100", "cub".
      split: "train", "validation" or "test" (disjoint classes).
      ways, shots, query_shots, meta_batch_size, seed, start: as `km.data.episodes`.
      data_dir, manual_dir: as `train_statistics`.
      image_size: int or `(height, width)`; the benchmark's native size when None.

    Returns:
      A `tf.data.Dataset` of episodes (see `km.data.episodes`), images float32
      `[image_size, image_size, 3]` normalised by the train split's per-channel
      mean and standard deviation.

    Example:

    ```python
    import os

    data_dir = os.path.expanduser("~/tensorflow_datasets")
    if os.path.isdir(os.path.join(data_dir, "cifar100")):
        test = km.data.benchmark_episodes("fc100", "test", ways=5, shots=5, data_dir=data_dir)
    ```
    """
    _check_name(name)
    if split not in class_splits.SPLITS:
        raise ValueError(f"`split` must be one of {list(class_splits.SPLITS)}; received "
                         f"{split!r}.")
    normalize = normalizer(*train_statistics(name, data_dir, manual_dir))
    native = IMAGE_SIZES[name]
    size = None if image_size in (None, native, (native, native)) else image_size
    return sampling.episodes(
        name, ways=ways, shots=shots, query_shots=query_shots, meta_batch_size=meta_batch_size,
        seed=seed, tfds_split=split, data_dir=data_dir, preprocess=normalize, image_size=size,
        start=start)


def mini_imagenet_episodes(split, *, ways=5, shots=1, query_shots=15, meta_batch_size=4, seed=0,
                           data_dir=None, manual_dir=None, image_size=None, start=0):
    """mini-ImageNet episodes of `split` ("train", "validation" or "test").

    Ravi & Larochelle's split of 100 ImageNet synsets × 600 images, 84×84,
    from the raw files the user provides (TFDS builder `mini_imagenet`).

    Args:
      split: "train", "validation" or "test" (64 / 16 / 20 classes, disjoint).
      ways, shots, query_shots, meta_batch_size, seed, start: as `km.data.episodes`.
      data_dir: TFDS data directory (TFDS's default when None).
      manual_dir: the directory of the raw files when not
        `<data_dir>/downloads/manual/mini_imagenet` (see the README, Datasets).
      image_size: int or `(height, width)` to resize to; 84×84 when None.

    Returns:
      A `tf.data.Dataset` of episodes (see `km.data.episodes`): images float32
      `[84, 84, 3]`, each channel normalised by the mean and standard
      deviation of the train split's pixels in [0, 1] (`km.data.train_statistics`).

    Example:

    ```python
    import os

    data_dir = os.path.expanduser("~/tensorflow_datasets")
    if os.path.isdir(os.path.join(data_dir, "mini_imagenet")):  # prepared before
        train = km.data.mini_imagenet_episodes("train", ways=5, shots=1, query_shots=15,
                                               meta_batch_size=4, data_dir=data_dir)
        inputs, query_y = next(iter(train))
        inputs["support_x"].shape  # (4, 5, 84, 84, 3)
    ```
    """
    return benchmark_episodes(
        "mini_imagenet", split, ways=ways, shots=shots, query_shots=query_shots,
        meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir, manual_dir=manual_dir,
        image_size=image_size, start=start)


def tiered_imagenet_episodes(split, *, ways=5, shots=1, query_shots=15, meta_batch_size=4, seed=0,
                             data_dir=None, manual_dir=None, image_size=None, start=0):
    """tiered-ImageNet episodes of `split` ("train", "validation" or "test").

    Ren et al.'s split by 34 super-categories (20 / 6 / 8), 84×84, from
    their release (TFDS builder `tiered_imagenet`).

    Args:
      split: "train", "validation" or "test" (351 / 97 / 160 classes, disjoint).
      ways, shots, query_shots, meta_batch_size, seed, start: as `km.data.episodes`.
      data_dir: TFDS data directory (TFDS's default when None).
      manual_dir: the directory of the raw files when not
        `<data_dir>/downloads/manual/tiered_imagenet` (see the README, Datasets).
      image_size: int or `(height, width)` to resize to; 84×84 when None.

    Returns:
      A `tf.data.Dataset` of episodes (see `km.data.episodes`): images float32
      `[84, 84, 3]`, each channel normalised by the mean and standard
      deviation of the train split's pixels in [0, 1] (`km.data.train_statistics`).

    Example:

    ```python
    import os

    data_dir = os.path.expanduser("~/tensorflow_datasets")
    if os.path.isdir(os.path.join(data_dir, "tiered_imagenet")):  # prepared before
        train = km.data.tiered_imagenet_episodes("train", ways=5, shots=1, query_shots=15,
                                                 meta_batch_size=4, data_dir=data_dir)
        inputs, query_y = next(iter(train))
        inputs["support_x"].shape  # (4, 5, 84, 84, 3)
    ```
    """
    return benchmark_episodes(
        "tiered_imagenet", split, ways=ways, shots=shots, query_shots=query_shots,
        meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir, manual_dir=manual_dir,
        image_size=image_size, start=start)


def cifar_fs_episodes(split, *, ways=5, shots=1, query_shots=15, meta_batch_size=4, seed=0,
                      data_dir=None, image_size=None, start=0):
    """CIFAR-FS episodes of `split` ("train", "validation" or "test").

    Bertinetto et al.'s class split of CIFAR-100, 32×32 (TFDS builder
    `cifar_fs`, made from TFDS `cifar100`, which TFDS downloads).

    Args:
      split: "train", "validation" or "test" (64 / 16 / 20 classes, disjoint).
      ways, shots, query_shots, meta_batch_size, seed, start: as `km.data.episodes`.
      data_dir: TFDS data directory (TFDS's default when None).
      image_size: int or `(height, width)` to resize to; 32×32 when None.

    Returns:
      A `tf.data.Dataset` of episodes (see `km.data.episodes`): images float32
      `[32, 32, 3]`, each channel normalised by the mean and standard
      deviation of the train split's pixels in [0, 1] (`km.data.train_statistics`).

    Example:

    ```python
    import os

    data_dir = os.path.expanduser("~/tensorflow_datasets")
    if os.path.isdir(os.path.join(data_dir, "cifar_fs")):  # prepared before
        train = km.data.cifar_fs_episodes("train", ways=5, shots=1, query_shots=15,
                                          meta_batch_size=4, data_dir=data_dir)
        inputs, query_y = next(iter(train))
        inputs["support_x"].shape  # (4, 5, 32, 32, 3)
    ```
    """
    return benchmark_episodes(
        "cifar_fs", split, ways=ways, shots=shots, query_shots=query_shots,
        meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir,
        image_size=image_size, start=start)


def fc100_episodes(split, *, ways=5, shots=1, query_shots=15, meta_batch_size=4, seed=0,
                   data_dir=None, image_size=None, start=0):
    """FC100 episodes of `split` ("train", "validation" or "test").

    Oreshkin et al.'s superclass split of CIFAR-100 (12 / 4 / 4
    superclasses), 32×32 (TFDS builder `fc100`, made from TFDS `cifar100`).

    Args:
      split: "train", "validation" or "test" (60 / 20 / 20 classes, disjoint).
      ways, shots, query_shots, meta_batch_size, seed, start: as `km.data.episodes`.
      data_dir: TFDS data directory (TFDS's default when None).
      image_size: int or `(height, width)` to resize to; 32×32 when None.

    Returns:
      A `tf.data.Dataset` of episodes (see `km.data.episodes`): images float32
      `[32, 32, 3]`, each channel normalised by the mean and standard
      deviation of the train split's pixels in [0, 1] (`km.data.train_statistics`).

    Example:

    ```python
    import os

    data_dir = os.path.expanduser("~/tensorflow_datasets")
    if os.path.isdir(os.path.join(data_dir, "fc100")):  # prepared before
        train = km.data.fc100_episodes("train", ways=5, shots=1, query_shots=15,
                                       meta_batch_size=4, data_dir=data_dir)
        inputs, query_y = next(iter(train))
        inputs["support_x"].shape  # (4, 5, 32, 32, 3)
    ```
    """
    return benchmark_episodes(
        "fc100", split, ways=ways, shots=shots, query_shots=query_shots,
        meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir,
        image_size=image_size, start=start)


def cub_episodes(split, *, ways=5, shots=1, query_shots=15, meta_batch_size=4, seed=0,
                 data_dir=None, image_size=None, start=0):
    """CUB-200-2011 episodes of `split` ("train", "validation" or "test").

    Chen et al.'s species split (`i % 2 == 0` / `i % 4 == 1` /
    `i % 4 == 3`), 84×84 (TFDS builder `cub`, made from TFDS
    `caltech_birds2011`).

    Args:
      split: "train", "validation" or "test" (100 / 50 / 50 classes, disjoint).
      ways, shots, query_shots, meta_batch_size, seed, start: as `km.data.episodes`.
      data_dir: TFDS data directory (TFDS's default when None).
      image_size: int or `(height, width)` to resize to; 84×84 when None.

    Returns:
      A `tf.data.Dataset` of episodes (see `km.data.episodes`): images float32
      `[84, 84, 3]`, each channel normalised by the mean and standard
      deviation of the train split's pixels in [0, 1] (`km.data.train_statistics`).

    Example:

    ```python
    import os

    data_dir = os.path.expanduser("~/tensorflow_datasets")
    if os.path.isdir(os.path.join(data_dir, "cub")):  # prepared before
        train = km.data.cub_episodes("train", ways=5, shots=1, query_shots=15,
                                     meta_batch_size=4, data_dir=data_dir)
        inputs, query_y = next(iter(train))
        inputs["support_x"].shape  # (4, 5, 84, 84, 3)
    ```
    """
    return benchmark_episodes(
        "cub", split, ways=ways, shots=shots, query_shots=query_shots,
        meta_batch_size=meta_batch_size, seed=seed, data_dir=data_dir,
        image_size=image_size, start=start)
