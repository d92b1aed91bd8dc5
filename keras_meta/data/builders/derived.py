"""Builders derived from another TFDS dataset: `cifar_fs`, `fc100` (from
`cifar100`) and `cub` (from `caltech_birds2011`).

Each reads its source's `train` and `test` splits from the same data
directory (preparing the source there first if needed: TFDS downloads it
then, with its own checksums) and regroups the examples by class into
`train` / `validation` / `test` splits of disjoint classes. Labels keep the
source's ids, so a class has the same label in every split it could be in.
"""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_meta.data.builders import class_splits

CUB_IMAGE_SIZE = 84

_CIFAR_FS_CITATION = """\
@inproceedings{bertinetto2019meta,
  title={Meta-learning with differentiable closed-form solvers},
  author={Bertinetto, Luca and Henriques, Jo{\\~a}o F and Torr, Philip HS and Vedaldi, Andrea},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""
_FC100_CITATION = """\
@inproceedings{oreshkin2018tadam,
  title={TADAM: Task dependent adaptive metric for improved few-shot learning},
  author={Oreshkin, Boris and Rodr{\\'\\i}guez L{\\'o}pez, Pau and Lacoste, Alexandre},
  booktitle={Advances in Neural Information Processing Systems},
  year={2018}
}
"""
_CUB_CITATION = """\
@inproceedings{chen2019closer,
  title={A Closer Look at Few-shot Classification},
  author={Chen, Wei-Yu and Liu, Yen-Cheng and Kira, Zsolt and Wang, Yu-Chiang Frank and Huang, Jia-Bin},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""


def source_examples(builder, name, columns, image_size=None):
    """Every example of TFDS `name`'s train and test splits, in `builder`'s
    data directory: yields `(key, {column: numpy value})`, images resized
    (antialiased, rounded to uint8) to `image_size` when given."""
    source = tfds.builder(name, data_dir=builder.data_dir_root)
    source.download_and_prepare()
    for split in ("train", "test"):
        dataset = source.as_dataset(split=split, shuffle_files=False)
        if image_size is not None:
            dataset = dataset.map(lambda example: {**example, "image": _resized(
                example["image"], image_size)}, num_parallel_calls=tf.data.AUTOTUNE)
        for index, example in enumerate(tfds.as_numpy(dataset)):
            yield f"{split}_{index:06d}", {column: example[column] for column in columns}


def _resized(image, size):
    resized = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


class _CifarSplit(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """CIFAR-100 regrouped by a class split: `SPLIT_OF` maps each value of
    the feature `SPLIT_FEATURE` (the fine or the coarse label) to its split."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The published split of TFDS cifar100 (3.x)."}
    CITATION = ""

    def _info(self):
        return self.dataset_info_from_configs(
            description=type(self).__doc__.split("\n\n")[0],
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(32, 32, 3), encoding_format="png"),
                "label": tfds.features.ClassLabel(names=class_splits.CIFAR100_FINE_NAMES),
                "coarse_label": tfds.features.ClassLabel(
                    names=class_splits.CIFAR100_COARSE_NAMES),
            }),
            supervised_keys=("image", "label"),
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            citation=self.CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # TFDS prepares `cifar100` (see `source_examples`).
        examples = list(source_examples(self, "cifar100", ("image", "label", "coarse_label")))
        return {split: self._generate_examples(examples, split) for split in class_splits.SPLITS}

    def _generate_examples(self, examples, split):
        for key, example in examples:
            if self.SPLIT_OF[int(example[self.SPLIT_FEATURE])] == split:
                yield key, example


class CifarFs(_CifarSplit):
    """CIFAR-FS: CIFAR-100 split 64 / 16 / 20 by class (Bertinetto et al. 2019).

    The TFDS dataset `cifar_fs`, made from TFDS `cifar100` (its train and test
    images together, 600 per class) in the same data directory; importing
    `keras_meta` registers it. Features: `image` (32×32×3 uint8), `label`
    (CIFAR-100's fine class, 0..99, alphabetical names) and `coarse_label`
    (its superclass, 0..19). Splits `train`, `validation`, `test` hold 64, 16
    and 20 disjoint classes (`class_splits.CIFAR_FS_SPLIT`). Constructor
    arguments are TFDS's.

    Example:

    ```python
    import tensorflow_datasets as tfds

    dataset = tfds.load("cifar_fs", split="test", data_dir="~/tensorflow_datasets")
    ```
    """

    CITATION = _CIFAR_FS_CITATION
    SPLIT_FEATURE = "label"
    SPLIT_OF = {class_splits.CIFAR100_FINE_NAMES.index(name): split
                for split, names in class_splits.CIFAR_FS_SPLIT.items() for name in names}


class Fc100(_CifarSplit):
    """FC100: CIFAR-100 split 12 / 4 / 4 by superclass (Oreshkin et al. 2018).

    The TFDS dataset `fc100`, made from TFDS `cifar100` (train and test images
    together, 600 per class) in the same data directory; importing
    `keras_meta` registers it. Features as `cifar_fs`: `image` (32×32×3),
    `label` (fine class) and `coarse_label` (superclass). Splits `train`,
    `validation`, `test` hold the classes of 12, 4 and 4 disjoint superclasses
    (60, 20 and 20 classes; `class_splits.FC100_SPLIT`). Constructor arguments
    are TFDS's.

    Example:

    ```python
    import tensorflow_datasets as tfds

    dataset = tfds.load("fc100", split="train", data_dir="~/tensorflow_datasets")
    ```
    """

    CITATION = _FC100_CITATION
    SPLIT_FEATURE = "coarse_label"
    SPLIT_OF = {class_splits.CIFAR100_COARSE_NAMES.index(name): split
                for split, names in class_splits.FC100_SPLIT.items() for name in names}


class Cub(tfds.core.GeneratorBasedBuilder):
    """CUB-200-2011 split 100 / 50 / 50 by species (Chen et al. 2019), 84×84.

    The TFDS dataset `cub`, made from TFDS `caltech_birds2011` (train and
    test images together, 11,788 in all) in the same data directory; images
    are resized to 84×84 (bilinear, antialiased; not cropped). Importing
    `keras_meta` registers it. Features: `image` (84×84×3 uint8), `label`
    (species number − 1, 0..199) and `label_name`. Splits: `train` species
    with `label % 2 == 0`, `validation` `label % 4 == 1`, `test`
    `label % 4 == 3` (100, 50 and 50 species). Constructor arguments are
    TFDS's.

    Example:

    ```python
    import tensorflow_datasets as tfds

    dataset = tfds.load("cub", split="test", data_dir="~/tensorflow_datasets")
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Chen et al.'s split of TFDS caltech_birds2011, 84×84."}

    def _info(self):
        return self.dataset_info_from_configs(
            description="CUB-200-2011 in Chen et al.'s 100 / 50 / 50 species split, 84×84.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(CUB_IMAGE_SIZE, CUB_IMAGE_SIZE, 3),
                                             encoding_format="png"),
                "label": tfds.features.ClassLabel(num_classes=class_splits.CUB_NUM_CLASSES),
                "label_name": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            homepage="https://www.vision.caltech.edu/datasets/cub_200_2011/",
            citation=_CUB_CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # TFDS prepares `caltech_birds2011` (see `source_examples`).
        examples = list(source_examples(self, "caltech_birds2011",
                                        ("image", "label", "label_name"), CUB_IMAGE_SIZE))
        return {split: self._generate_examples(examples, split) for split in class_splits.SPLITS}

    def _generate_examples(self, examples, split):
        for key, example in examples:
            if class_splits.cub_split(int(example["label"])) == split:
                yield key, {**example, "label_name": np.asarray(example["label_name"]).item()}
