"""Omniglot episodes with the standard protocol, and the Omniglot preprocessing.

Pixel convention (everywhere in keras_meta): an Omniglot image is float32
`[28, 28, 1]` in [0, 1] with strokes = 1 and background = 0. The PNGs are
black strokes on white, so pixels are inverted (as the MAML reference
implementation does), then the 105×105 drawing is downsampled to 28×28 with
an antialiasing (area-scaled bilinear) filter.

Class splits:
- `source="omniglot_minimal"` (default, offline; the packaged TFDS builder),
  by alphabet: train = Balinese, Early_Aramaic, Greek, Korean,
  Japanese_(katakana) (157 characters, ×4 with rotations); validation = Latin
  (26); test = Sanskrit, Tagalog (59).
- `source="omniglot"` (TFDS's full Omniglot, needs the network once): the
  MAML paper's character split of all 1,623 characters, irrespective of
  alphabet: 1,200 for meta-training, of which the MAML reference code holds
  out 100 for validation, and the remaining 423 for test. Characters are
  shuffled by `np.random.RandomState(1).permutation(1623)` (a frozen numpy
  stream): train = the first 1,100, validation = the next 100, test = the
  last 423.
"""

import functools

import numpy as np
import tensorflow as tf

from keras_meta.data import sampling
from keras_meta.data.omniglot_minimal import builder

IMAGE_SIZE = 28

MINIMAL_SPLIT = {
    "train": ("Balinese", "Early_Aramaic", "Greek", "Korean", "Japanese_(katakana)"),
    "validation": ("Latin",),
    "test": ("Sanskrit", "Tagalog"),
}
SPLITS = tuple(MINIMAL_SPLIT)
SOURCES = ("omniglot_minimal", "omniglot")

MAML_SPLIT_SEED = 1
MAML_SPLIT_SIZES = {"train": 1100, "validation": 100, "test": 423}


def maml_character_split():
    """The full-Omniglot character split: `{split: sorted labels}` (1100 / 100 / 423)."""
    order = np.random.RandomState(MAML_SPLIT_SEED).permutation(builder.NUM_CHARACTERS)
    ends = np.cumsum(list(MAML_SPLIT_SIZES.values()))
    parts = np.split(order, ends[:-1])
    return {name: tuple(sorted(part.tolist())) for name, part in zip(MAML_SPLIT_SIZES, parts)}


def omniglot_preprocess(image, image_size=IMAGE_SIZE):
    """An Omniglot drawing as the model sees it.

    Args:
      image: uint8 `[H, W, C]` or `[N, H, W, C]`, any size, `C` = 1 or 3
        (channels are averaged; traced with unknown `C`, any count is), black
        strokes on white (as the Omniglot PNGs and TFDS give them).
      image_size: side of the output, 28 by default (the MAML protocol); a
        larger side keeps more of the thin strokes (the PNGs are 105×105,
        which `image_size=105` keeps exactly).

    Returns:
      float32 `[image_size, image_size, 1]` (or `[N, ...]`) in [0, 1], strokes = 1.

    Example:

    ```python
    drawing = np.full((105, 105, 1), 255, "uint8")  # white paper
    drawing[40:60, 50:55] = 0  # one black stroke
    image = km.data.omniglot_preprocess(drawing)  # [28, 28, 1], strokes = 1
    ```
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"`image_size` must be an int >= 1; received {image_size!r}.")
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        raise ValueError(f"`image` must be uint8; received dtype {image.dtype.name}.")
    if image.shape.rank not in (3, 4) or image.shape[-1] not in (1, 3, None):
        raise ValueError(
            "`image` must have shape [H, W, C] or [N, H, W, C] with C = 1 or 3; received "
            f"shape {image.shape}."
        )
    # Inverting in uint8 keeps the background exactly 0; resizing before averaging
    # the channels (both linear) is equivalent and cheaper.
    ink = tf.image.resize(255 - image, (image_size, image_size), method="bilinear", antialias=True)
    ink = tf.reduce_mean(ink, axis=-1, keepdims=True)
    return tf.clip_by_value(ink / 255.0, 0.0, 1.0)


def omniglot_selection(split, source="omniglot_minimal", rotations=None):
    """The `km.data.episodes` arguments that select Omniglot's `split`.

    Args:
      split: "train", "validation" or "test" (see the module docstring).
      source: "omniglot_minimal" (packaged, offline) or "omniglot" (TFDS).
      rotations: rotations by 90° as new classes; by default on for "train"
        only (the MAML protocol).

    Returns:
      A dict with `source`, `classes`, `split`, `group_by`, `tfds_split`,
      `rotations` and `preprocess`.
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)}; received {split!r}.")
    if source not in SOURCES:
        raise ValueError(f"`source` must be one of {list(SOURCES)}; received {source!r}.")
    if source == "omniglot_minimal":
        classes = dict(classes=MINIMAL_SPLIT, group_by="alphabet", tfds_split="train")
    else:
        classes = dict(classes=maml_character_split(), group_by=None, tfds_split="train+test")
    return dict(source=source, split=split, preprocess=omniglot_preprocess,
                rotations=split == "train" if rotations is None else rotations, **classes)


def omniglot_episodes(split, *, ways=5, shots=1, query_shots=15, meta_batch_size=32, seed=0,
                      rotations=None, source="omniglot_minimal", data_dir=None, start=0,
                      within_alphabet=False, image_size=IMAGE_SIZE):
    """Omniglot episodes of `split` ("train", "validation" or "test").

    Args:
      split, source, rotations: as `omniglot_selection`.
      ways, shots, query_shots, meta_batch_size, seed, start: as `km.data.episodes`.
      data_dir: TFDS data directory (TFDS's default when None).
      within_alphabet: Lake et al.'s within-alphabet trials
        (`source="omniglot_minimal"` only): each batch's tasks draw their
        characters from one alphabet of `split`, `ways` capped at its size
        (Tagalog has 17 characters), and each task's support set is `shots`
        drawers' drawings of its characters, its query set `query_shots`
        other drawers'. Lake et al.'s trial is `ways=20, shots=1,
        query_shots=1`.
      image_size: side of the images, as `omniglot_preprocess`.

    Returns:
      A `tf.data.Dataset` of episodes with images `[image_size, image_size, 1]`
      (see `km.data.episodes`).

    Example:

    ```python
    train = km.data.omniglot_episodes("train", ways=5, shots=1, query_shots=5, meta_batch_size=8)
    inputs, query_y = next(iter(train))
    inputs["support_x"].shape  # (8, 5, 28, 28, 1)
    ```
    """
    if not isinstance(within_alphabet, bool):
        raise ValueError(f"`within_alphabet` must be a bool; received {within_alphabet!r}.")
    if within_alphabet and source != "omniglot_minimal":
        raise ValueError(
            f"`within_alphabet=True` needs source='omniglot_minimal' (it has the drawers "
            f"and the alphabet split); received source={source!r}."
        )
    trials = dict(within_group=True, drawer_key="drawer") if within_alphabet else {}
    selection = omniglot_selection(split, source, rotations)
    if image_size != IMAGE_SIZE:
        omniglot_preprocess(np.zeros((1, 1, 1), "uint8"), image_size)  # checks `image_size`
        selection["preprocess"] = functools.partial(omniglot_preprocess, image_size=image_size)
    return sampling.episodes(
        ways=ways, shots=shots, query_shots=query_shots, meta_batch_size=meta_batch_size,
        seed=seed, data_dir=data_dir, start=start, **selection, **trials)
