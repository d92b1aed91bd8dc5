"""`km.data.variable_episodes` against Triantafillou et al.'s (2020) formulas.

Every image encodes its class and its index within the class (pixels
`[class, index // 200, index % 200, 0]`), so each episode is decoded back
into (class, example) pairs and checked against the formulas computed
here in NumPy. Statistical checks state their tolerance: a frequency lies
within 5 binomial standard deviations of its expectation (a false alarm
about once in 1.7 million per check).
"""

import math

import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta.data import variable


def _source(counts):
    labels = np.repeat(np.arange(len(counts)), counts)
    index = np.concatenate([np.arange(c) for c in counts])
    images = np.zeros((len(labels), 2, 2, 1), np.uint8)
    images[:, 0, 0, 0] = labels
    images[:, 0, 1, 0] = index // 200
    images[:, 1, 0, 0] = index % 200
    return tf.data.Dataset.from_tensor_slices((images, labels))


def _raw(image):
    return tf.cast(image, tf.float32)


def _decode(inputs, query_y):
    """Per task: `(support [(class, example, label)], query [...])` of the real entries."""
    tasks = []
    for t in range(inputs["support_x"].shape[0]):
        sets = []
        for x, y, mask in ((inputs["support_x"][t], inputs["support_y"][t],
                            inputs["support_mask"][t]),
                           (inputs["query_x"][t], query_y[t], inputs["query_mask"][t])):
            x, y, mask = np.asarray(x), np.asarray(y), np.asarray(mask)
            assert (x[~mask] == 0).all() and (y[~mask] == 0).all()  # padding is zeros
            assert mask[:mask.sum()].all()                         # real entries first
            pixels = x[mask].astype(int)
            sets.append([(p[0, 0, 0], p[0, 1, 0] * 200 + p[1, 0, 0], label)
                         for p, label in zip(pixels, y[mask])])
        tasks.append(sets)
    return tasks


def _tasks(dataset, batches):
    out = []
    for inputs, query_y in dataset.take(batches):
        out += _decode({k: v.numpy() for k, v in inputs.items()}, query_y.numpy())
    return out


def _within(count, expected, n, name):
    sigma = math.sqrt(n * expected * (1 - expected))
    assert abs(count - n * expected) <= 5 * sigma, (name, count, n * expected, sigma)


COUNTS = np.random.default_rng(0).integers(4, 40, size=30)


@pytest.fixture(scope="module")
def varied_tasks():
    dataset = km.data.variable_episodes(_source(COUNTS), meta_batch_size=50, max_ways=12,
                                        max_support_size=60, seed=3, preprocess=_raw)
    return _tasks(dataset, 16)  # 800 tasks


def test_ways_uniform_and_query_shots_follow_the_formula(varied_tasks):
    ways = []
    for support, query in varied_tasks:
        label_class = {label: c for c, _, label in support}
        n = len(label_class)
        assert sorted(label_class) == list(range(n))              # labels 0..N-1
        assert len(set(label_class.values())) == n                # distinct classes
        ways.append(n)
        # query: the same q per class, q = min(10, min_c floor(count_c / 2))
        q = min(10, min(COUNTS[c] // 2 for c in label_class.values()))
        per_class = np.bincount([label for _, _, label in query], minlength=n)
        assert (per_class == q).all()
        for c, _, label in query:
            assert label_class[label] == c
        # no example in both sets, none twice
        pairs = [(c, e) for c, e, _ in support] + [(c, e) for c, e, _ in query]
        assert len(set(pairs)) == len(pairs)
        # support: 1 <= n_c <= count_c - q, total <= 60
        shots = np.bincount([label for _, _, label in support], minlength=n)
        remaining = np.array([COUNTS[label_class[k]] - q for k in range(n)])
        assert (shots >= 1).all() and (shots <= remaining).all() and shots.sum() <= 60
    counts = np.bincount(ways, minlength=13)[5:]
    assert len(counts) == 8 and counts.sum() == len(ways)         # ways in [5, min(12, 30)]
    for w, count in enumerate(counts, start=5):
        _within(count, 1 / 8, len(ways), f"{w} ways")


@pytest.fixture(scope="module")
def large_class_tasks():
    # 20 classes × 400: remaining = 390, a class contributes min(100, 390) = 100,
    # so |S| = N · k with k = floor(100 β + 1) uniform on 1..100 (no cap at 2000).
    dataset = km.data.variable_episodes(_source([400] * 20), meta_batch_size=50, max_ways=12,
                                        max_support_size=2000, seed=5, preprocess=_raw)
    return _tasks(dataset, 12)  # 600 tasks


def test_support_size_and_imbalance_follow_the_formulas(large_class_tasks):
    ks, deviations, dof = [], 0.0, 0
    for support, query in large_class_tasks:
        labels = np.array([label for _, _, label in support])
        n = labels.max() + 1
        assert len(query) == 10 * n                               # q = min(10, 200)
        shots = np.bincount(labels, minlength=n)
        # Σ n_c = Σ floor(p_c (|S| − N)) + N lies in (|S| − N, |S|]: k = ceil(Σ n_c / N)
        k = math.ceil(shots.sum() / n)
        ks.append(k)
        # p_c ∝ exp(α_c), α_c ∈ [log ½, log 2]: n_max − 1 <= 4 · n_min
        assert shots.max() - 1 <= 4 * shots.min()
        if k >= 60:  # shots ≥ ~15: log n_c ≈ log p_c + const
            logs = np.log(shots - 0.5)
            deviations += ((logs - logs.mean()) ** 2).sum()
            dof += n - 1
    ks = np.array(ks)
    assert ks.min() >= 1 and ks.max() <= 100
    for lo in range(0, 100, 20):  # k uniform on 1..100: each fifth holds 20 %
        _within(((ks > lo) & (ks <= lo + 20)).sum(), 0.2, len(ks), f"k in ({lo}, {lo + 20}]")
    # Var(α) = (log 4)² / 12 = 0.160 for α uniform on [log ½, log 2]; the rounding
    # of n_c adds little. Tolerance 0.03 (about 5 standard errors at ~2000 dof).
    assert dof > 1000
    assert abs(deviations / dof - math.log(4) ** 2 / 12) < 0.03


def test_support_size_cap_and_padded_shapes():
    dataset = km.data.variable_episodes(_source([400] * 20), meta_batch_size=20, max_ways=12,
                                        max_support_size=300, seed=2, preprocess=_raw)
    inputs, query_y = next(iter(dataset))
    assert inputs["support_x"].shape == (20, 300, 2, 2, 1)
    assert inputs["query_x"].shape == (20, 120, 2, 2, 1) and query_y.shape == (20, 120)
    sizes = inputs["support_mask"].numpy().sum(axis=1)
    assert sizes.max() <= 300 and sizes.min() >= 5
    assert variable.padded_sizes([np.full(20, 400)], [20], min_ways=5, max_ways=12,
                                 max_query_per_class=10, max_support_size=300,
                                 max_support_per_class=100) == (12, 300, 120)


def test_deterministic_for_a_seed_and_resumable():
    def batches(seed, start=0, count=3):
        dataset = km.data.variable_episodes(_source(COUNTS), meta_batch_size=4, max_ways=10,
                                            max_support_size=40, seed=seed, start=start)
        return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in dataset.take(count)]

    first, again, other = batches(0), batches(0), batches(1)
    for a, b in zip(first, again):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(first[0][0]["support_x"], other[0][0]["support_x"])
    resumed = batches(0, start=2, count=1)[0]
    tf.nest.map_structure(np.testing.assert_array_equal, resumed, first[2])


def test_disjoint_splits_and_multi_source_mixing():
    split = {"train": list(range(0, 20)), "test": list(range(20, 30))}
    seen = {}
    for name in split:
        dataset = km.data.variable_episodes(_source(COUNTS), meta_batch_size=20, classes=split,
                                            split=name, max_ways=10, max_support_size=40,
                                            preprocess=_raw)
        seen[name] = {c for support, query in _tasks(dataset, 3) for c, _, _ in support + query}
        assert seen[name] <= set(split[name])
    assert not seen["train"] & seen["test"] and len(seen["test"]) == 10
    with pytest.raises(ValueError, match="disjoint|overlap|both"):
        km.data.variable_episodes(_source(COUNTS), meta_batch_size=2, split="train",
                                  classes={"train": [0, 1, 2, 3, 4], "test": [4, 5, 6, 7, 8]})

    # Two sources (classes 0..5 of 30 examples; classes 0..19 of 12, shifted by 100 via the
    # split): each task's classes come from one source, drawn with probability 1/4 : 3/4.
    small = _source([30] * 6)
    large = _source([12] * 20).map(lambda image, label: (image + 100, label))
    dataset = km.data.variable_episodes([small, large], source_weights=[1, 3],
                                        meta_batch_size=50, max_ways=8, max_support_size=40,
                                        preprocess=_raw, seed=4)
    tasks = _tasks(dataset, 8)
    from_large = 0
    for support, query in tasks:
        classes = {c for c, _, _ in support + query}
        assert all(c >= 100 for c in classes) or all(c < 100 for c in classes)
        if min(classes) >= 100:
            from_large += 1
            assert 5 <= len(classes) <= 8
            assert len(query) == 6 * len(classes)                  # q = min(10, 12 // 2)
        else:
            assert 5 <= len(classes) <= 6                          # min(8, 6 classes)
            assert len(query) == 10 * len(classes)
    _within(from_large, 0.75, len(tasks), "tasks from the second source")


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_ways=4), "max_ways"),
    (dict(min_ways=40), "min_ways"),
    (dict(max_support_size=3), "max_support_size"),
    (dict(log_weight_range=(1.0, 0.0)), "log_weight_range"),
    (dict(source_weights=[1, 2]), "source_weights"),
    (dict(meta_batch_size=0), "meta_batch_size"),
])
def test_bad_arguments_are_named(kwargs, match):
    arguments = dict(meta_batch_size=2, **{k: v for k, v in kwargs.items()
                                           if k != "meta_batch_size"})
    if "meta_batch_size" in kwargs:
        arguments["meta_batch_size"] = kwargs["meta_batch_size"]
    with pytest.raises(ValueError, match=match):
        km.data.variable_episodes(_source(COUNTS), **arguments)
