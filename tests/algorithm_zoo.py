"""Tiny instances of every `MetaModel` algorithm keras_meta exports, for the
tests that must hold for all of them (callbacks, checkpoints, export).

`exported_algorithms()` discovers the algorithms (registered `MetaModel`
subclasses in `keras_meta`, `keras_meta.algorithms` and
`keras_meta.baselines`); `ENTRIES` says how to build and train a tiny one.
An algorithm without an entry gets `default_entry`: the class called on a
small convolutional classifier, trained on episodes; if that does not fit
the new algorithm, add an entry here.

Data: 8×8×1 images, `WAYS`-way episodes of random images (labels in a
random order per task), or labelled batches for pre-training baselines.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from keras_meta.data.stream import counter_stream

IMAGE = (8, 8, 1)
WAYS, SHOTS, QUERIES, TASKS = 3, 2, 2, 2
PRETRAINING_CLASSES = 6
CROSSENTROPY = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def classifier(ways=WAYS):
    """conv (4 channels), batch norm, ReLU, pooling, dense: `[N, 8, 8, 1]` → `[N, ways]`."""
    return keras.Sequential([
        keras.Input(IMAGE), keras.layers.Conv2D(4, 3, padding="same"),
        keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(ways)])


def embedding(flatten=True):
    """`[N, 8, 8, 1]` → `[N, 64]` (or `[N, 4, 4, 4]` feature maps)."""
    layers = [keras.Input(IMAGE), keras.layers.Conv2D(4, 3, padding="same"),
              keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.MaxPooling2D(2)]
    return keras.Sequential(layers + [keras.layers.Flatten()] if flatten else layers)


@dataclasses.dataclass(frozen=True)
class Entry:
    """How to build, compile and train one tiny algorithm instance.

    `data` is "episodes" (meta-training on episodes) or "labelled"
    (pre-training on `(x, y)` batches, as `FineTune` with `num_classes`).
    """

    name: str
    build: callable
    loss: callable = lambda model: CROSSENTROPY
    data: str = "episodes"

    def compiled(self, seed=0, learning_rate=0.01):
        keras.utils.set_random_seed(seed)
        model = self.build()
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=self.loss(model),
                      metrics=["accuracy"])
        return model

    def training_data(self, batches, seed=0, start=0):
        """A stream cycling through `batches` training batches, beginning at
        batch `start` (an int, or `model.optimizer.iterations` to resume)."""
        if self.data == "labelled":
            rng = np.random.default_rng(seed)
            x = rng.normal(size=(batches, 12, *IMAGE)).astype("float32")
            y = rng.integers(0, PRETRAINING_CLASSES, size=(batches, 12)).astype("int32")
            return cycle((x, y), start)
        return cycle(episode_arrays(batches, seed), start)


def cycle(arrays, start=0):
    """The counter stream whose batch `i` is `arrays[i % len]` (a nested
    structure of arrays with a leading batch axis)."""
    batches = len(tf.nest.flatten(arrays)[0])
    tensors = tf.nest.map_structure(tf.constant, arrays)
    return counter_stream(lambda i: tf.nest.map_structure(
        lambda t: tf.gather(t, i % batches), tensors), start)


def episodes(tasks=TASKS, ways=WAYS, shots=SHOTS, queries=QUERIES, seed=0):
    """One batch of random episodes, `(inputs, query_y)` as NumPy arrays."""
    rng = np.random.default_rng(seed)

    def labels(per_class):
        return np.stack([rng.permutation(np.repeat(np.arange(ways), per_class))
                         for _ in range(tasks)]).astype("int32")

    support_y, query_y = labels(shots), labels(queries)
    inputs = {
        "support_x": (rng.normal(size=(tasks, ways * shots, *IMAGE))
                      + support_y[..., None, None, None]).astype("float32"),
        "support_y": support_y,
        "query_x": (rng.normal(size=(tasks, ways * queries, *IMAGE))
                    + query_y[..., None, None, None]).astype("float32"),
    }
    return inputs, query_y


def episode_arrays(batches, seed=0, **shape):
    """`batches` episode batches (seeds `seed`, `seed + 1`, ...) stacked:
    `(inputs, query_y)` with a leading batch axis."""
    parts = [episodes(seed=seed + i, **shape) for i in range(batches)]
    inputs = {key: np.stack([p[0][key] for p in parts]) for key in parts[0][0]}
    return inputs, np.stack([p[1] for p in parts])


def episode_dataset(batches, seed=0, **shape):
    """`episode_arrays` as a finite dataset."""
    return tf.data.Dataset.from_tensor_slices(episode_arrays(batches, seed, **shape))


def _loop(**kwargs):
    return dict(inner_steps=1, eval_inner_steps=2, **kwargs)


ENTRIES = {entry.name: entry for entry in (
    Entry("MAML", lambda: km.MAML(classifier(), inner_lr=0.1, **_loop())),
    Entry("FOMAML", lambda: km.FOMAML(classifier(), inner_lr=0.1, **_loop())),
    Entry("Reptile", lambda: km.Reptile(classifier(), inner_lr=0.1, inner_steps=2,
                                        eval_inner_steps=2)),
    Entry("MetaSGD", lambda: km.MetaSGD(classifier(), inner_lr_init=0.1, **_loop())),
    Entry("ANIL", lambda: km.ANIL(classifier(), inner_lr=0.1, **_loop())),
    Entry("MAMLPlusPlus", lambda: km.MAMLPlusPlus(classifier(), inner_lr=0.1, inner_steps=2,
                                                  eval_inner_steps=3)),
    Entry("ProtoNet", lambda: km.ProtoNet(embedding())),
    Entry("MatchingNet", lambda: km.MatchingNet(embedding(), full_context_embeddings=True,
                                                context_steps=2)),
    Entry("RelationNet", lambda: km.RelationNet(
        embedding(flatten=False),
        km.algorithms.relation.default_relation_module(filters=4, hidden=4)),
        loss=lambda model: model.default_loss()),
    Entry("FineTune", lambda: km.baselines.FineTune(embedding(), num_classes=PRETRAINING_CLASSES,
                                                    steps=3), data="labelled"),
    Entry("MultiTask", lambda: km.baselines.MultiTask(embedding(), steps=3)),
    Entry("SNAIL", lambda: km.SNAIL(embedding(), ways=WAYS, shots=SHOTS, filters=4,
                                    attention=((4, 4), (4, 4)))),
    Entry("LEO", lambda: km.LEO(embedding(), latent_size=4, inner_steps=1, finetune_steps=1)),
    Entry("MetaLSTM", lambda: km.MetaLSTM(classifier(), hidden_units=3, **_loop())),
)}


def exported_algorithms():
    """`{name: class}` of every registered `MetaModel` subclass keras_meta exports."""
    found = {}
    for module in (km, km.algorithms, km.baselines):
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, km.MetaModel) \
                    and keras.saving.get_registered_object(f"keras_meta>{value.__name__}") is value:
                found[value.__name__] = value
    return found


def default_entry(name, cls):
    return Entry(name, lambda: cls(classifier()))


def all_entries():
    """An entry for every exported algorithm (`ENTRIES`, else `default_entry`)."""
    return [ENTRIES.get(name) or default_entry(name, cls)
            for name, cls in sorted(exported_algorithms().items())]


ALL = all_entries()
IDS = [entry.name for entry in ALL]


# Run by the default suite in the slower per-algorithm tests (the others are
# marked slow there): a second-order inner loop, MAML++'s per-step weights
# and epoch schedule, a metric learner with batch-norm statistics, and a
# baseline pre-trained on labelled batches.
REPRESENTATIVE = ("MAML", "MAMLPlusPlus", "ProtoNet", "FineTune")


def entry(name):
    """The entry of algorithm `name`."""
    return ALL[IDS.index(name)]


def params(names=IDS):
    """`names` as pytest parameters, those not `REPRESENTATIVE` marked slow."""
    return [pytest.param(name, marks=() if name in REPRESENTATIVE else pytest.mark.slow)
            for name in names]
