"""Reads the packaged Omniglot "minimal" archives safely.

Each archive is checked against its sha256 before it is opened, and every
member name is checked before it is used: absolute paths, drive letters,
backslashes, `..` components and symbolic links are rejected, so a tampered
archive can never name a file outside its own tree. Members are read into
memory; nothing is written to disk.

Layout inside an archive:
`images_background_smallN/<alphabet>/characterNN/<global id>_<drawer>.png`,
where `<global id>` is the character's 1-based index among the 1,623
characters of the full Omniglot and `<drawer>` (01–20) numbers who drew it
(each character has one drawing by each of the 20 numbers).
"""

import dataclasses
import hashlib
import pathlib
import re
import stat
import zipfile

ARCHIVE_SHA256 = {
    "images_background_small1.zip": "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
    "images_background_small2.zip": "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
}

_CHARACTER_DIR = re.compile(r"character(\d+)")
_DRAWING_FILE = re.compile(r"(\d+)_(\d+)\.png")


@dataclasses.dataclass(frozen=True)
class Drawing:
    """One Omniglot drawing, with the fields of TFDS's `omniglot` examples."""

    alphabet: str
    alphabet_char_id: int  # 0-based index of the character in its alphabet
    label: int  # global character id − 1, in 0..1622
    file_name: str  # "<global id>_<drawer>.png"
    png: bytes

    @property
    def drawer(self):
        """The drawer's number in the file name, 1..20."""
        return int(_DRAWING_FILE.fullmatch(self.file_name).group(2))

    @property
    def key(self):
        """The example key TFDS's `omniglot` builder uses."""
        return f"{self.alphabet}_{self.alphabet_char_id}_{self.file_name}"


def verify_sha256(path, expected):
    """Raises `ValueError` unless the file at `path` exists and has sha256 `expected`."""
    path = pathlib.Path(path)
    if not path.is_file():
        present = sorted(p.name for p in path.parent.iterdir()) if path.parent.is_dir() else []
        raise ValueError(
            f"Omniglot archive `{path.name}` is missing from {path.parent}; files there: "
            f"{present}. Reinstall keras_meta to restore the packaged archives."
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise ValueError(
            f"Omniglot archive `{path}` is corrupted: sha256 {digest}, expected {expected}. "
            "Reinstall keras_meta to restore the packaged archives."
        )


def safe_member_parts(name, archive):
    """The components of the archive member `name`, or `ValueError` if the name
    could point outside the archive's tree."""
    parts = name.rstrip("/").split("/")
    unsafe = (
        name.startswith("/")
        or "\\" in name
        or re.match(r"^[A-Za-z]:", name)
        or any(part in ("", ".", "..") for part in parts)
    )
    if unsafe:
        raise ValueError(
            f"Omniglot archive `{archive}` has an unsafe member name {name!r}: member "
            "names must be relative paths without '..', '.', empty components, "
            "drive letters or backslashes."
        )
    return parts


def read_drawings(path):
    """Yields every `Drawing` of the archive at `path` (no checksum check)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            parts = safe_member_parts(info.filename, path)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ValueError(
                    f"Omniglot archive `{path}` has a symbolic link member {info.filename!r}."
                )
            if info.is_dir():
                continue
            yield _drawing(parts, archive.read(info), info.filename, path)


def _drawing(parts, png, name, path):
    character = _CHARACTER_DIR.fullmatch(parts[2]) if len(parts) == 4 else None
    drawing = _DRAWING_FILE.fullmatch(parts[3]) if len(parts) == 4 else None
    if character is None or drawing is None:
        raise ValueError(
            f"Omniglot archive `{path}` has an unexpected member {name!r}; expected "
            "'<root>/<alphabet>/characterNN/<global id>_<drawer>.png'."
        )
    return Drawing(
        alphabet=parts[1],
        alphabet_char_id=int(character.group(1)) - 1,
        label=int(drawing.group(1)) - 1,
        file_name=parts[3],
        png=png,
    )


def read_omniglot_minimal(directory):
    """Verifies and reads both archives in `directory`.

    Greek and Latin are in both archives; each of their drawings is kept once,
    after checking that both copies are byte-identical.

    Returns:
      The distinct `Drawing`s (4,840 for the packaged archives), sorted by key.
    """
    directory = pathlib.Path(directory)
    for file_name, sha256 in ARCHIVE_SHA256.items():
        verify_sha256(directory / file_name, sha256)
    drawings = {}
    for file_name in ARCHIVE_SHA256:
        for drawing in read_drawings(directory / file_name):
            seen = drawings.setdefault(drawing.key, drawing)
            if seen.png != drawing.png:
                raise ValueError(
                    f"Omniglot archives disagree on drawing {drawing.key!r}: the copy in "
                    f"`{file_name}` differs from the first one read."
                )
    return [drawings[key] for key in sorted(drawings)]
