"""`omniglot_minimal`: the two Omniglot "minimal" background sets as a TFDS
dataset that needs no network.

The archives ship inside keras_meta (MIT licence, see LICENSE and README.md
beside this file). Defining `OmniglotMinimal` registers it with TFDS, so after
`import keras_meta`, `tfds.load("omniglot_minimal")` prepares it offline.

Features are those of TFDS's `omniglot`: `image` (105×105×3 uint8 PNG, black
strokes on white), `alphabet` (class label over the 50 Omniglot alphabets,
same ids as `omniglot`), `alphabet_char_id` (0-based character index within
its alphabet) and `label` (global character id − 1, over 1,623 classes; its
names are not set, as `omniglot` derives them from archives not shipped here),
and one `omniglot` lacks: `drawer`, who drew the example (1..20, from the file
name `<global id>_<drawer>.png`), which Lake et al.'s within-alphabet
one-shot trials use: their support set is one drawer's drawing of each
character, their queries another drawer's.
One split, `train`: 8 alphabets, 242 characters, 20 drawings each (4,840
examples; Greek and Latin, present in both archives, counted once).
"""

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from keras_meta.data.omniglot_minimal import archives

ARCHIVE_DIR = pathlib.Path(__file__).parent

NUM_CHARACTERS = 1623

ALPHABETS = tuple(sorted((
    "Alphabet_of_the_Magi", "Angelic", "Anglo-Saxon_Futhorc", "Arcadian", "Armenian",
    "Asomtavruli_(Georgian)", "Atemayar_Qelisayer", "Atlantean", "Aurek-Besh", "Avesta",
    "Balinese", "Bengali", "Blackfoot_(Canadian_Aboriginal_Syllabics)", "Braille",
    "Burmese_(Myanmar)", "Cyrillic", "Early_Aramaic", "Futurama", "Ge_ez", "Glagolitic",
    "Grantha", "Greek", "Gujarati", "Gurmukhi", "Hebrew",
    "Inuktitut_(Canadian_Aboriginal_Syllabics)", "Japanese_(hiragana)",
    "Japanese_(katakana)", "Kannada", "Keble", "Korean", "Latin", "Malay_(Jawi_-_Arabic)",
    "Malayalam", "Manipuri", "Mkhedruli_(Georgian)", "Mongolian", "N_Ko",
    "Ojibwe_(Canadian_Aboriginal_Syllabics)", "Old_Church_Slavonic_(Cyrillic)", "Oriya",
    "Sanskrit", "Syriac_(Estrangelo)", "Syriac_(Serto)", "Sylheti", "Tagalog", "Tengwar",
    "Tibetan", "Tifinagh", "ULOG",
)))  # All 50 Omniglot alphabets, sorted: TFDS `omniglot` numbers them so.

_CITATION = """\
@article{lake2015human,
  title={Human-level concept learning through probabilistic program induction},
  author={Lake, Brenden M and Salakhutdinov, Ruslan and Tenenbaum, Joshua B},
  journal={Science},
  volume={350},
  number={6266},
  pages={1332--1338},
  year={2015}
}
"""


class OmniglotMinimal(tfds.core.GeneratorBasedBuilder):
    """Omniglot's `images_background_small1` and `small2`, packaged, deduplicated.

    The TFDS dataset `omniglot_minimal`, built offline from the archives that
    ship with keras_meta; importing `km.data` registers it. Features: `image`
    (105×105×3 uint8 PNG), `alphabet`, `alphabet_char_id`, `label` (the
    character) and `drawer`. Constructor arguments are TFDS's.

    Example:

    ```python
    import tensorflow_datasets as tfds

    dataset = tfds.load("omniglot_minimal", split="train")
    example = next(iter(dataset))
    example["image"].shape  # (105, 105, 3)
    ```
    """

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "The two minimal background sets, Greek and Latin counted once.",
        "1.1.0": "Adds the `drawer` feature.",
    }

    def _info(self):
        # The description is README.md beside this file (TFDS reads it).
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(105, 105, 3), encoding_format="png"),
                "alphabet": tfds.features.ClassLabel(names=ALPHABETS),
                "alphabet_char_id": np.int64,
                "label": tfds.features.ClassLabel(num_classes=NUM_CHARACTERS),
                "drawer": np.int64,
            }),
            supervised_keys=("image", "label"),
            homepage="https://github.com/brendenlake/omniglot",
            citation=_CITATION,
            license="MIT",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # The archives are packaged; nothing is downloaded.
        return {"train": self._generate_examples(archives.read_omniglot_minimal(ARCHIVE_DIR))}

    def _generate_examples(self, drawings):
        for drawing in drawings:
            yield drawing.key, {
                "image": drawing.png,
                "alphabet": drawing.alphabet,
                "alphabet_char_id": drawing.alphabet_char_id,
                "label": drawing.label,
                "drawer": drawing.drawer,
            }
