"""The few-shot benchmark builders (`cifar_fs`, `fc100`, `cub`,
`mini_imagenet`, `tiered_imagenet`) on generated fixtures in each raw
format, loaded through `tfds.load`: class counts, split disjointness,
labels, images checked against the fixtures' own records, the checksum and
safe-unpickling refusals and the "directory does not match" errors; then
the episode helpers' normalisation and the CLI.

mini- and tiered-ImageNet fixtures are small: the tests shrink the
expected counts (images per class; tiered's class and image counts) the
builders verify, which are module constants read at preparation time."""

import collections
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras_meta as km
from keras_meta.cli import config as run_config
from keras_meta.cli import models
from keras_meta.data.builders import class_splits, manual_files, mini_imagenet, tiered_imagenet
from tests import benchmark_fixtures as fixtures

SPLITS = ("train", "validation", "test")


def load(name, split, data_dir, manual_dir=None):
    if manual_dir is not None:
        km.data.benchmarks.prepared_builder(name, data_dir, manual_dir)
    return fixtures.load_split(name, split, data_dir)


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("cifar")
    return data_dir, fixtures.cifar100(data_dir)


@pytest.mark.parametrize("name", ["cifar_fs", "fc100"])
def test_cifar_splits_hold_the_published_classes_and_every_image_once(cifar_dir, name):
    data_dir, lookup = cifar_dir
    fine, coarse = class_splits.CIFAR100_FINE_NAMES, class_splits.CIFAR100_COARSE_NAMES
    if name == "cifar_fs":
        expected = {s: {fine.index(c) for c in class_splits.CIFAR_FS_SPLIT[s]} for s in SPLITS}
        sizes = (64, 16, 20)
    else:
        expected = {s: {fine.index(c) for g in class_splits.FC100_SPLIT[s]
                        for c in class_splits.CIFAR100_SUPERCLASSES[g]} for s in SPLITS}
        sizes = (60, 20, 20)
    seen = []
    for split, size in zip(SPLITS, sizes):
        examples = load(name, split, data_dir)
        images = examples["image"]
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
        labels = set(examples["label"].tolist())
        assert labels == expected[split] and len(labels) == size
        assert collections.Counter(examples["label"].tolist()) == {c: 20 for c in labels}
        for image, label, coarse_label in zip(images, examples["label"], examples["coarse_label"]):
            assert lookup[image.tobytes()] == (label, coarse_label)
        seen += [image.tobytes() for image in images]
        if name == "fc100":
            groups = {coarse[g] for g in examples["coarse_label"].tolist()}
            assert groups == set(class_splits.FC100_SPLIT[split])
    assert len(seen) == len(set(seen)) == len(lookup) == 2000
    assert set.union(*expected.values()) == set(range(100))


def test_cub_split_is_chen_et_al_and_images_are_84(tmp_path):
    colours = fixtures.caltech_birds2011(tmp_path)
    labels = {}
    for split in SPLITS:
        examples = load("cub", split, tmp_path)
        assert examples["image"].shape[1:] == (84, 84, 3)
        labels[split] = set(examples["label"].tolist())
        for image, label in zip(examples["image"], examples["label"]):
            colour = tuple(int(v) for v in image[0, 0])
            assert (image == image[0, 0]).all() and colour in colours[label]
        names = {n.decode() for n in examples["label_name"]}
        assert names == {f"{label + 1:03d}.species" for label in labels[split]}
    assert labels["train"] == set(range(0, 200, 2))
    assert labels["validation"] == set(range(1, 200, 4))
    assert labels["test"] == set(range(3, 200, 4))
    assert [len(labels[s]) for s in SPLITS] == [100, 50, 50]


@pytest.fixture
def three_per_class(monkeypatch):
    monkeypatch.setattr(mini_imagenet, "IMAGES_PER_CLASS", 3)


def checked_mini_imagenet_images(data_dir, identify):
    """Checks every split's images against their sources → how many were checked."""
    names = tfds.builder("mini_imagenet", data_dir=str(data_dir)).info.features["label"].names
    checked = 0
    for split in SPLITS:
        examples = load("mini_imagenet", split, data_dir)
        assert examples["image"].dtype == np.uint8 and examples["image"].shape[1:] == (84, 84, 3)
        wnids = [names[label] for label in examples["label"]]
        assert collections.Counter(wnids) == {w: 3 for w in class_splits.MINI_IMAGENET_SPLIT[split]}
        for image, wnid in zip(examples["image"], wnids):
            assert identify(image) == wnid
            checked += 1
    assert len(set(names)) == 100
    return checked


def test_mini_imagenet_from_pickle_caches(tmp_path, three_per_class):
    manual = tmp_path / "manual"
    manual.mkdir()
    lookup = fixtures.mini_imagenet_pickles(manual, per_class=3)
    (manual / "SHA256SUMS").write_text("".join(
        f"{manual_files.sha256(p)}  {p.name}\n" for p in sorted(manual.glob("*.pkl"))))
    km.data.benchmarks.prepared_builder("mini_imagenet", tmp_path / "data", manual)
    assert checked_mini_imagenet_images(tmp_path / "data",
                                        lambda image: lookup[image.tobytes()]) == 100 * 3


@pytest.mark.parametrize("by_synset", [False, True], ids=["flat", "imagenet_layout"])
def test_mini_imagenet_from_csvs_and_images(tmp_path, three_per_class, by_synset):
    manual = tmp_path / "manual"
    lookup = fixtures.mini_imagenet_csv(manual, per_class=3, by_synset=by_synset)
    km.data.benchmarks.prepared_builder("mini_imagenet", tmp_path / "data", manual)
    assert checked_mini_imagenet_images(tmp_path / "data",
                                        lambda image: lookup[image.tobytes()][0]) == 100 * 3


def test_mini_imagenet_refuses_a_pickle_whose_checksum_differs(tmp_path, three_per_class):
    fixtures.mini_imagenet_pickles(tmp_path, per_class=3)
    digest = manual_files.sha256(tmp_path / "mini-imagenet-cache-val.pkl")
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    (tmp_path / "SHA256SUMS").write_text(f"{wrong}  mini-imagenet-cache-val.pkl\n")
    with pytest.raises(ValueError, match=rf"mini-imagenet-cache-val.pkl has SHA-256 {digest}, "
                                         rf"expected {wrong}"):
        km.data.benchmarks.prepared_builder("mini_imagenet", tmp_path / "data", tmp_path)
    assert not (tmp_path / "data" / "mini_imagenet" / "1.0.0").exists()


def test_pickles_that_would_run_code_are_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"image_data": Exploit()}))
    with pytest.raises(ValueError, match="refusing to load posix.system|refusing to load os"):
        manual_files.safe_load_pickle(path)
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    path.write_bytes(pickle.dumps({"a": array, "b": [1, "x"]}))
    loaded = manual_files.safe_load_pickle(path)
    np.testing.assert_array_equal(loaded["a"], array)
    assert loaded["b"] == [1, "x"]


@pytest.mark.parametrize("damage, message", [
    ("nothing", r"neither the pickle caches .* nor the split files"),
    ("csv", r"split files missing: val.csv"),
    ("image", r"1 images of test.csv missing from images/<file name>: n0193011200000001.jpg"),
    ("class", r"train.csv: 1 train synsets missing \(n13133613\)"),
    ("count", r"each synset needs 3 images; these have another count: n01855672 \(2\)"),
    ("pickle", r"pickle caches missing: mini-imagenet-cache-test.pkl"),
])
def test_mini_imagenet_names_what_the_directory_lacks(tmp_path, three_per_class, damage, message):
    manual = tmp_path / "manual"
    if damage == "nothing":
        manual.mkdir()
        (manual / "README").write_text("unrelated")
    elif damage == "pickle":
        manual.mkdir()
        fixtures.mini_imagenet_pickles(manual, per_class=3)
        (manual / "mini-imagenet-cache-test.pkl").unlink()
    else:
        fixtures.mini_imagenet_csv(manual, per_class=3)
        if damage == "csv":
            (manual / "val.csv").unlink()
        elif damage == "image":
            rows = (manual / "test.csv").read_text().splitlines()
            first = next(r for r in rows if r.startswith("n01930112")).split(",")[0]
            (manual / "images" / first).unlink()
            (manual / "test.csv").write_text("\n".join(
                r.replace(first, "n0193011200000001.jpg") for r in rows) + "\n")
            (manual / "images" / "n0193011200000001.jpg").unlink(missing_ok=True)
        else:
            path = manual / ("train.csv" if damage == "class" else "val.csv")
            wnid = "n13133613" if damage == "class" else "n01855672"
            rows = path.read_text().splitlines()
            kept = [r for r in rows if not r.endswith(wnid)]
            if damage == "count":
                kept += [r for r in rows if r.endswith(wnid)][:2]
            path.write_text("\n".join(kept) + "\n")
    with pytest.raises(ValueError, match=f"mini_imagenet: the manual directory .* does not "
                                         f"match: .*{message}"):
        km.data.benchmarks.prepared_builder("mini_imagenet", tmp_path / "data", manual)


TIERED = dict(classes={"train": 4, "validation": 3, "test": 3},
              super_categories={"train": 2, "validation": 1, "test": 2})


@pytest.fixture
def small_tiered(monkeypatch):
    per_class = 3
    monkeypatch.setattr(tiered_imagenet, "CLASSES", TIERED["classes"])
    monkeypatch.setattr(tiered_imagenet, "SUPER_CATEGORIES", TIERED["super_categories"])
    monkeypatch.setattr(tiered_imagenet, "IMAGES", {s: n * per_class for s, n in
                                                     TIERED["classes"].items()})
    return per_class


@pytest.mark.parametrize("npz", [False, True], ids=["png_pickles", "npz"])
def test_tiered_imagenet_labels_super_categories_and_images(tmp_path, small_tiered, npz):
    manual = tmp_path / "manual"
    manual.mkdir()
    lookup = fixtures.tiered_imagenet(manual, per_class=small_tiered, npz=npz, **TIERED)
    km.data.benchmarks.prepared_builder("tiered_imagenet", tmp_path / "data", manual)
    label_offset, super_offset, seen = 0, 0, []
    for split in SPLITS:
        examples = load("tiered_imagenet", split, tmp_path / "data")
        count, supers = TIERED["classes"][split], TIERED["super_categories"][split]
        assert set(examples["label"].tolist()) == set(range(label_offset, label_offset + count))
        assert set(examples["super_label"].tolist()) == set(range(super_offset,
                                                                  super_offset + supers))
        label_of = {}
        for image, label, super_label, name, super_name in zip(
                examples["image"], examples["label"], examples["super_label"],
                examples["label_name"], examples["super_label_name"]):
            assert lookup[image.tobytes()] == (split, name.decode(), super_name.decode())
            assert label_of.setdefault(name, (label, super_label)) == (label, super_label)
        seen += [image.tobytes() for image in examples["image"]]
        label_offset += count
        super_offset += supers
    assert len(seen) == len(set(seen)) == len(lookup)


@pytest.mark.parametrize("damage, message", [
    ("labels", r"missing val_labels.pkl"),
    ("count", r"train_labels.pkl: Ren et al.'s train split has 13 images; found 12"),
    ("overlap", r"splits validation and test share 1 super-categories \(shared\)"),
])
def test_tiered_imagenet_names_what_the_directory_lacks(tmp_path, small_tiered, monkeypatch,
                                                        damage, message):
    fixtures.tiered_imagenet(tmp_path, per_class=small_tiered, **TIERED)
    if damage == "labels":
        (tmp_path / "val_labels.pkl").unlink()
    elif damage == "count":
        monkeypatch.setattr(tiered_imagenet, "IMAGES", {**tiered_imagenet.IMAGES, "train": 13})
    else:
        for stem in ("val", "test"):
            path = tmp_path / f"{stem}_labels.pkl"
            labels = pickle.loads(path.read_bytes())
            labels["label_general_str"][0] = "shared"
            path.write_bytes(pickle.dumps(labels))
    with pytest.raises(ValueError, match=f"tiered_imagenet: the manual directory .* does not "
                                         f"match: {message}"):
        km.data.benchmarks.prepared_builder("tiered_imagenet", tmp_path / "data", tmp_path)


def test_episodes_are_normalised_by_the_train_split_statistics(cifar_dir):
    data_dir, lookup = cifar_dir
    train = load("cifar_fs", "train", data_dir)["image"].reshape(-1, 3) / 255.0
    mean, std = km.data.train_statistics("cifar_fs", data_dir=str(data_dir))
    np.testing.assert_allclose(mean, train.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, train.std(0), rtol=1e-4)
    assert json.loads((tfds.builder("cifar_fs", data_dir=str(data_dir)).data_path
                       / "train_statistics.json").read_text())["mean"] == pytest.approx(mean)
    test_classes = {class_splits.CIFAR100_FINE_NAMES.index(c)
                    for c in class_splits.CIFAR_FS_SPLIT["test"]}
    episodes = km.data.cifar_fs_episodes("test", ways=5, shots=2, query_shots=3,
                                         meta_batch_size=2, seed=3, data_dir=str(data_dir))
    inputs, query_y = next(iter(episodes))
    assert inputs["support_x"].shape == (2, 10, 32, 32, 3) and query_y.shape == (2, 15)
    assert inputs["support_x"].dtype == np.float32
    for t in range(2):
        classes = collections.defaultdict(set)
        for images, labels in ((inputs["support_x"][t], inputs["support_y"][t]),
                               (inputs["query_x"][t], query_y[t])):
            for image, label in zip(images.numpy(), labels.numpy()):
                pixels = np.round((image * std + mean) * 255.0).astype(np.uint8)
                classes[int(label)].add(lookup[pixels.tobytes()][0])
        assert all(len(c) == 1 for c in classes.values()) and len(classes) == 5
        assert set.union(*classes.values()) <= test_classes


def test_episode_helpers_reject_bad_arguments(cifar_dir):
    data_dir, _ = cifar_dir
    with pytest.raises(ValueError, match=r"`split` must be one of \['train', 'validation', "
                                         r"'test'\]; received 'val'"):
        km.data.fc100_episodes("val", data_dir=str(data_dir))
    with pytest.raises(ValueError, match=r"`name` must be one of .*received 'cifar_100'"):
        km.data.benchmark_episodes("cifar_100", "train")
    with pytest.raises(ValueError, match=r"`manual_dir`: .*nowhere is not a directory"):
        km.data.mini_imagenet_episodes("train", manual_dir=str(data_dir / "nowhere"))


def test_the_maml_mini_imagenet_presets_are_the_papers():
    one = run_config.from_settings(preset="maml_mini_imagenet_5w1s")
    five = run_config.from_settings(preset="maml_mini_imagenet_5w5s", iterations=10)
    for config, shots, batch in ((one, 1, 4), (five, 5, 2)):
        assert (config.dataset, config.algorithm, config.filters, config.image_shape) == (
            "mini_imagenet", "maml", 32, (84, 84, 3))
        assert (config.ways, config.shots, config.query_shots, config.meta_batch_size) == (
            5, shots, 15, batch)
        assert (config.inner_lr, config.inner_steps, config.eval_inner_steps) == (0.01, 5, 10)
    assert one.iterations == 60000 and five.iterations == 10
    with pytest.raises(run_config.UsageError, match="--filters=64 conflicts with "
                                                    "--preset=maml_mini_imagenet_5w1s"):
        run_config.from_settings(preset="maml_mini_imagenet_5w1s", filters=64)


def test_the_protonet_mini_imagenet_presets_are_the_papers():
    one = run_config.from_settings(preset="protonet_mini_imagenet_5w1s")
    five = run_config.from_settings(preset="protonet_mini_imagenet_5w5s")
    for config, shots, train_ways in ((one, 1, 30), (five, 5, 20)):
        assert (config.dataset, config.algorithm, config.filters, config.image_shape) == (
            "mini_imagenet", "protonet", 64, (84, 84, 3))
        assert (config.ways, config.train_ways, config.shots, config.query_shots,
                config.meta_batch_size, config.learning_rate) == (5, train_ways, shots, 15, 1, 1e-3)
    with pytest.raises(run_config.UsageError, match="--train_ways=10 conflicts with "
                                                    "--preset=protonet_mini_imagenet_5w1s"):
        run_config.from_settings(preset="protonet_mini_imagenet_5w1s", train_ways=10)
    deep = run_config.from_settings(preset="protonet_resnet12_mini_imagenet_5w1s")
    assert (deep.backbone, deep.train_ways, deep.ways) == ("resnet12", 30, 5)
    assert one.backbone == "conv4"


def test_a_resnet12_backbone_embeds_with_resnet12():
    config = run_config.from_settings(dataset="fc100", algorithm="protonet", backbone="resnet12")
    model = models.build_model(config)
    assert model.embedding.name == "resnet12"
    assert model.embedding.output_shape == (None, 640)
    assert model.embedding.input_shape == (None, 32, 32, 3)
    with pytest.raises(run_config.UsageError, match="--backbone=resnet12 does not apply to "
                                                    "--algorithm=maml"):
        run_config.from_settings(dataset="fc100", algorithm="maml", backbone="resnet12")
    with pytest.raises(run_config.UsageError, match="--filters=32 does not apply to "
                                                    "--backbone=resnet12"):
        run_config.from_settings(dataset="fc100", algorithm="protonet", backbone="resnet12",
                                 filters=32)


def run_cli(*flags):
    return subprocess.run([sys.executable, "-m", "keras_meta.train", *flags],
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_cli_trains_and_tests_on_a_benchmark(cifar_dir, tmp_path):
    data_dir, _ = cifar_dir
    result = run_cli("--dataset=fc100", "--algorithm=protonet", "--filters=4", "--iterations=2",
                     "--train_ways=7", "--meta_batch_size=2", "--query_shots=2", "--test_tasks=4",
                     "--val_tasks=0", "--verbose=0", "--export=false",
                     f"--data_dir={data_dir}", f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["dataset"] == "fc100" and results["test"]["tasks"] == 4
    assert (results["config"]["train_ways"], results["config"]["ways"]) == (7, 5)
    assert results["train"]["iterations"] == 2
    assert 0.0 <= results["test"]["test_accuracy"] <= 1.0


@pytest.mark.slow
def test_the_maml_mini_imagenet_preset_starts_training_on_a_fixture(tmp_path, monkeypatch):
    """The fixture holds 16 images per synset (1 shot + 15 queries); it is
    prepared here with that count, then the CLI reads the prepared data."""
    monkeypatch.setattr(mini_imagenet, "IMAGES_PER_CLASS", 16)
    manual = tmp_path / "manual"
    manual.mkdir()
    fixtures.mini_imagenet_pickles(manual, per_class=16)
    km.data.benchmarks.prepared_builder("mini_imagenet", tmp_path / "data", manual)
    result = run_cli("--preset=maml_mini_imagenet_5w1s", "--iterations=2", "--log_every=1",
                     "--test_tasks=2", "--val_tasks=2", "--verbose=2", "--export=false",
                     f"--data_dir={tmp_path / 'data'}", f"--output_dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-4000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["filters"] == 32 and results["config"]["meta_batch_size"] == 4
    assert len(results["history"]["loss"]) == 2
