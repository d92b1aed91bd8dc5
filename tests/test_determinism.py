"""Determinism (with TensorFlow's op determinism on, as for crash-resume):
the same seed twice gives bit-identical weights after a few meta-iterations;
another seed — of the weights or of the episode stream — gives other weights."""

import keras
import numpy as np
import pytest

import keras_meta as km
from tests import algorithm_zoo as zoo

# Covered in the default suite; the rest of the zoo runs with -m slow.
DEFAULT = ("MAML", "Reptile", "MAMLPlusPlus", "ProtoNet", "MatchingNet", "FineTune")


def trained_weights(entry, seed, batches=2):
    """Weights after `batches` meta-iterations of `entry`'s model (eagerly),
    weights and data both seeded with `seed`."""
    model = entry.compiled(seed=seed)
    model.run_eagerly = True
    model.fit(entry.training_data(batches, seed=seed), steps_per_epoch=batches, verbose=0)
    return [np.array(w) for w in model.weights]


def same(first, second):
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


def seeded_runs(entry):
    """Weights after runs with seeds 0, 0 and 1."""
    return [trained_weights(entry, seed) for seed in (0, 0, 1)]


@pytest.mark.parametrize("entry", [e for e in zoo.ALL if e.name in DEFAULT],
                         ids=[name for name in zoo.IDS if name in DEFAULT])
def test_seeded_runs_repeat_bit_for_bit(entry, op_determinism):
    reference, again, other_seed = seeded_runs(entry)
    assert same(again, reference)
    assert not same(other_seed, reference)


@pytest.mark.slow
@pytest.mark.parametrize("entry", [e for e in zoo.ALL if e.name not in DEFAULT],
                         ids=[name for name in zoo.IDS if name not in DEFAULT])
def test_seeded_runs_repeat_bit_for_bit_for_the_rest_of_the_zoo(entry, op_determinism):
    reference, again, other_seed = seeded_runs(entry)
    assert same(again, reference)
    assert not same(other_seed, reference)


def sinusoid_weights(weight_seed, stream_seed, steps=5):
    """MAML's weights after `steps` compiled meta-iterations on sinusoids."""
    keras.utils.set_random_seed(weight_seed)
    model = km.MAML(km.learners.mlp(hidden=(16, 16)), inner_lr=0.01, inner_steps=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    stream = km.data.sinusoid_episodes(shots=5, query_shots=5, meta_batch_size=4,
                                       seed=stream_seed)
    model.fit(stream, steps_per_epoch=steps, verbose=0)
    return [np.array(w) for w in model.weights]


def test_compiled_sinusoid_maml_depends_on_both_seeds_only(op_determinism):
    reference = sinusoid_weights(0, 0)
    assert same(sinusoid_weights(0, 0), reference)
    assert not same(sinusoid_weights(1, 0), reference)  # other initial weights
    assert not same(sinusoid_weights(0, 1), reference)  # other episodes
