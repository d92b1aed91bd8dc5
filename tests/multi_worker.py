"""Run as a script: a few MAML steps under MultiWorkerMirroredStrategy as one
worker of a cluster described by TF_CONFIG, or (with no TF_CONFIG) on one
process with the same global meta-batches. Prints one JSON line with the
final weights' checksum values."""

import os
import sys

import tensorflow as tf

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_meta as km  # noqa: E402

GLOBAL_TASKS, STEPS = 4, 3


def main(output):
    strategy = (tf.distribute.MultiWorkerMirroredStrategy() if "TF_CONFIG" in os.environ
                else tf.distribute.get_strategy())
    episodes = km.data.sinusoid_episodes(meta_batch_size=GLOBAL_TASKS, seed=3)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    episodes = episodes.with_options(options)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = km.MAML(km.learners.mlp(hidden=(16,)), inner_lr=0.05, inner_steps=2)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(episodes, steps_per_epoch=STEPS, epochs=1, verbose=0)
    np.save(output, np.concatenate([w.ravel() for w in model.get_weights()]))


if __name__ == "__main__":
    main(sys.argv[1])
