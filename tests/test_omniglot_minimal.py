"""The packaged `omniglot_minimal` TFDS builder, checked against the archives
read independently with `zipfile` and PIL."""

import collections
import hashlib
import io
import re
import shutil
import stat
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import keras_meta  # noqa: F401  (registers omniglot_minimal)
from keras_meta.data.omniglot_minimal import archives, builder

ARCHIVES = sorted(archives.ARCHIVE_SHA256)


def zip_drawings():
    """`{(alphabet, character dir, file name): png bytes}` over both archives."""
    drawings = {}
    for name in ARCHIVES:
        with zipfile.ZipFile(builder.ARCHIVE_DIR / name) as archive:
            for member in archive.namelist():
                if member.endswith(".png"):
                    _, alphabet, character, file_name = member.split("/")
                    drawings[(alphabet, character, file_name)] = archive.read(member)
    return drawings


def test_registered_and_loadable_offline(omniglot_data_dir):
    assert "omniglot_minimal" in tfds.list_builders()
    dataset = tfds.load("omniglot_minimal", split="train", data_dir=omniglot_data_dir)
    example = next(iter(dataset))
    assert example["image"].shape == (105, 105, 3)


def test_counts_alphabets_characters_drawings(omniglot_reference):
    alphabets = omniglot_reference["alphabet"]
    characters = collections.Counter(zip(alphabets, omniglot_reference["alphabet_char_id"]))
    assert len(set(alphabets)) == 8
    assert len(characters) == 242
    assert set(characters.values()) == {20}
    assert len(alphabets) == len(zip_drawings()) == 4840


def test_greek_and_latin_counted_once(omniglot_reference):
    per_alphabet = collections.Counter(omniglot_reference["alphabet"].tolist())
    expected = collections.Counter(alphabet for alphabet, _, _ in zip_drawings())
    assert per_alphabet == expected
    assert per_alphabet["Greek"] == 24 * 20 and per_alphabet["Latin"] == 26 * 20


def test_features_match_tfds_omniglot_plus_the_drawer():
    ours = tfds.builder("omniglot_minimal").info.features
    theirs = tfds.builder("omniglot").info.features
    tensors = dict(ours.get_tensor_info())
    assert tensors.pop("drawer") == tfds.features.TensorInfo(shape=(), dtype=np.int64)
    assert tensors == theirs.get_tensor_info()
    serialized = dict(ours.get_serialized_info())
    del serialized["drawer"]
    assert serialized == theirs.get_serialized_info()
    for key in theirs.keys():
        assert type(ours[key]) is type(theirs[key])
        if isinstance(theirs[key], tfds.features.ClassLabel):
            assert ours[key].num_classes == theirs[key].num_classes
    assert list(ours["alphabet"].names) == sorted(ours["alphabet"].names)


def test_fields_and_images_match_the_archives(omniglot_reference):
    expected = collections.defaultdict(list)
    for (alphabet, character, file_name), png in zip_drawings().items():
        global_id, drawer = map(int, file_name[:-len(".png")].split("_"))
        key = (alphabet, int(character[len("character"):]) - 1, global_id - 1, drawer)
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
        expected[key].append(np.repeat(pixels[..., None], 3, axis=-1).tobytes())
    actual = collections.defaultdict(list)
    for image, alphabet, char_id, label, drawer in zip(
            omniglot_reference["image"], omniglot_reference["alphabet"],
            omniglot_reference["alphabet_char_id"], omniglot_reference["label"],
            omniglot_reference["drawer"]):
        actual[(str(alphabet), int(char_id), int(label), int(drawer))].append(image.tobytes())
    assert actual.keys() == expected.keys()
    for key in expected:
        assert sorted(actual[key]) == sorted(expected[key]), key
    # Greek and Latin are in both archives: one example per drawer of each character.
    assert set(map(len, actual.values())) == {1}
    assert {key[3] for key in actual} == set(range(1, 21))


def test_license_and_attribution_are_packaged():
    license_text = (builder.ARCHIVE_DIR / "LICENSE").read_text()
    readme = (builder.ARCHIVE_DIR / "README.md").read_text()
    assert "MIT License" in license_text and "Brenden Lake" in license_text
    assert "Lake" in readme and "Science" in readme
    for name, sha256 in archives.ARCHIVE_SHA256.items():
        digest = hashlib.sha256((builder.ARCHIVE_DIR / name).read_bytes()).hexdigest()
        assert digest == sha256 and sha256 in readme


@pytest.fixture
def archive_copy(tmp_path):
    for name in ARCHIVES:
        shutil.copy(builder.ARCHIVE_DIR / name, tmp_path / name)
    return tmp_path


def test_corrupted_archive(archive_copy):
    path = archive_copy / ARCHIVES[1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=re.escape(f"`{path}` is corrupted: sha256")):
        archives.read_omniglot_minimal(archive_copy)


def test_missing_archive(archive_copy):
    (archive_copy / ARCHIVES[0]).unlink()
    with pytest.raises(ValueError, match=rf"`{ARCHIVES[0]}` is missing .*\['{ARCHIVES[1]}'\]"):
        archives.read_omniglot_minimal(archive_copy)


def test_builder_rejects_a_corrupted_archive(archive_copy, tmp_path_factory, monkeypatch):
    (archive_copy / ARCHIVES[0]).write_bytes(b"not a zip")
    monkeypatch.setattr(builder, "ARCHIVE_DIR", archive_copy)
    data_dir = tmp_path_factory.mktemp("tfds_corrupted")
    with pytest.raises(ValueError, match="corrupted"):
        tfds.builder("omniglot_minimal", data_dir=str(data_dir)).download_and_prepare()


def write_zip(path, members):
    """Writes `members` `{name: bytes}` keeping each name exactly as given."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == list(members)
    return path


@pytest.mark.parametrize("name", [
    "../evil.png",
    "images_background_small1/../../evil.png",
    "/etc/evil.png",
    "C:/evil.png",
    "images_background_small1\\..\\evil.png",
    "images_background_small1/./Greek/character01/0394_01.png",
])
def test_path_traversal_rejected(tmp_path, name):
    path = write_zip(tmp_path / "evil.zip", {name: b"x"})
    with pytest.raises(ValueError, match="unsafe member name"):
        list(archives.read_drawings(path))


def test_symbolic_link_rejected(tmp_path):
    path = tmp_path / "link.zip"
    info = zipfile.ZipInfo("images_background_small1/Greek/character01/0394_01.png")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="symbolic link"):
        list(archives.read_drawings(path))


def test_unexpected_layout_rejected(tmp_path):
    path = write_zip(tmp_path / "odd.zip", {"root/Greek/notes.txt": b"x"})
    with pytest.raises(ValueError, match="unexpected member 'root/Greek/notes.txt'"):
        list(archives.read_drawings(path))


def test_duplicates_kept_once_and_must_agree(tmp_path, monkeypatch):
    first, second = ARCHIVES
    member = "root/Greek/character01/0394_01.png"
    write_zip(tmp_path / first, {member: b"same"})
    write_zip(tmp_path / second, {member: b"same", "root/Latin/character02/0400_05.png": b"b"})
    checksums = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
                 for name in ARCHIVES}
    monkeypatch.setattr(archives, "ARCHIVE_SHA256", checksums)
    drawings = archives.read_omniglot_minimal(tmp_path)
    assert [(d.alphabet, d.alphabet_char_id, d.label, d.png) for d in drawings] == [
        ("Greek", 0, 393, b"same"), ("Latin", 1, 399, b"b")]

    write_zip(tmp_path / second, {member: b"different"})
    checksums[second] = hashlib.sha256((tmp_path / second).read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="disagree on drawing 'Greek_0_0394_01.png'"):
        archives.read_omniglot_minimal(tmp_path)
