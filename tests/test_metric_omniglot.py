"""Each metric learner and baseline, trained briefly on Omniglot minimal,
classifies held-out test characters (Sanskrit, Tagalog) far above chance.

Measured with these seeds (100 test tasks, 5 queries per class): ProtoNet
5-way 0.60 and 20-way 0.29, MatchingNet 0.61, RelationNet 0.50, FineTune
0.65, MultiTask 0.63; the thresholds leave room for platform differences."""

import functools

import keras
import pytest

import keras_meta as km

CROSSENTROPY = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
FILTERS = 16
TEST_TASKS = 100


@functools.cache
def train_episodes(ways, meta_batch_size, query_shots):
    return km.data.omniglot_episodes("train", ways=ways, shots=1, query_shots=query_shots,
                                     meta_batch_size=meta_batch_size, seed=0)


@functools.cache
def held_out_episodes(ways):
    return km.data.omniglot_episodes("test", ways=ways, shots=1, query_shots=5,
                                     meta_batch_size=TEST_TASKS // 2, seed=1)


def train_then_test(model, loss, train, iterations, ways):
    """Trains for `iterations` steps; accuracy on `TEST_TASKS` 1-shot test tasks."""
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    model.fit(train, steps_per_epoch=iterations, epochs=1, verbose=0)
    return model.evaluate(held_out_episodes(ways), steps=2, verbose=0, return_dict=True)["accuracy"]


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def test_protonet_5_way():
    model = km.ProtoNet(km.learners.conv4_embedding(filters=FILTERS))
    accuracy = train_then_test(model, CROSSENTROPY, train_episodes(5, 8, 5), 80, ways=5)
    assert accuracy > 0.45, f"chance is 0.20; got {accuracy:.3f}"


@pytest.mark.slow
def test_protonet_20_way():
    model = km.ProtoNet(km.learners.conv4_embedding(filters=FILTERS))
    accuracy = train_then_test(model, CROSSENTROPY, train_episodes(20, 2, 2), 80, ways=20)
    assert accuracy > 0.18, f"chance is 0.05; got {accuracy:.3f}"


@pytest.mark.slow
def test_matching_net_5_way():
    model = km.MatchingNet(km.learners.conv4_embedding(filters=FILTERS))
    accuracy = train_then_test(model, CROSSENTROPY, train_episodes(5, 8, 5), 80, ways=5)
    assert accuracy > 0.45, f"chance is 0.20; got {accuracy:.3f}"


@pytest.mark.slow
def test_relation_net_5_way():
    embedding = km.learners.conv4_embedding(filters=FILTERS, pooled_blocks=2, flatten=False)
    model = km.RelationNet(embedding, km.algorithms.relation.default_relation_module(FILTERS))
    accuracy = train_then_test(model, model.default_loss(), train_episodes(5, 4, 3), 80, ways=5)
    assert accuracy > 0.38, f"chance is 0.20; got {accuracy:.3f}"


@pytest.mark.slow  # the baselines' accuracies: README's short-run table
def test_finetune_5_way():
    train, num_classes = km.data.omniglot_batches("train", batch_size=64, seed=0)
    model = km.baselines.FineTune(km.learners.conv4_embedding(filters=FILTERS),
                                  num_classes=num_classes, steps=30)
    accuracy = train_then_test(model, CROSSENTROPY, train, 500, ways=5)
    assert accuracy > 0.45, f"chance is 0.20; got {accuracy:.3f}"


@pytest.mark.slow  # the baselines' accuracies: README's short-run table
def test_multitask_5_way():
    model = km.baselines.MultiTask(km.learners.conv4_embedding(filters=FILTERS), steps=20)
    accuracy = train_then_test(model, CROSSENTROPY, train_episodes(5, 8, 5), 80, ways=5)
    assert accuracy > 0.45, f"chance is 0.20; got {accuracy:.3f}"
