"""Run as a script: the episodes this process receives from
`experimental_distribute_dataset` (what `fit` calls) for the first `STEPS`
steps of a seeded episode stream, as one MultiWorkerMirroredStrategy worker
of the cluster in TF_CONFIG; with no TF_CONFIG, the stream's global batches
themselves. Saves `{stream name: [STEPS, tasks, S, ...] support_x}` to
the .npz file named on the command line."""

import itertools
import os
import sys

import tensorflow as tf

import numpy as np  # noqa: E402

import keras_meta as km  # noqa: E402

GLOBAL_TASKS, STEPS = 4, 3


def streams():
    """The two kinds of episode stream: sinusoids and images (a small
    in-memory source through the sampler `omniglot_episodes` uses)."""
    images = np.arange(6 * 4 * 2 * 2, dtype=np.uint8).reshape(24, 2, 2, 1)
    labels = np.repeat(np.arange(6), 4)
    source = tf.data.Dataset.from_tensor_slices((images, labels))
    return {
        "sinusoid": km.data.sinusoid_episodes(meta_batch_size=GLOBAL_TASKS, seed=3),
        "images": km.data.episodes(source, ways=2, shots=1, query_shots=1,
                                   meta_batch_size=GLOBAL_TASKS, seed=3),
    }


def main(output):
    strategy = (tf.distribute.MultiWorkerMirroredStrategy() if "TF_CONFIG" in os.environ
                else tf.distribute.get_strategy())
    received = {}
    for name, dataset in streams().items():
        batches = []
        for inputs, _ in itertools.islice(strategy.experimental_distribute_dataset(dataset), STEPS):
            parts = strategy.experimental_local_results(inputs["support_x"])
            batches.append(np.concatenate([part.numpy() for part in parts]))
        received[name] = np.stack(batches)
    np.savez(output, **received)


if __name__ == "__main__":
    main(sys.argv[1])
