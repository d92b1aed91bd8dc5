"""Run as a script: one MirroredStrategy step over 2 logical CPU devices
against one single-device step on the same global meta-batch, for the
algorithms named on the command line. Prints one JSON line:
`{algorithm: {"difference": max |Δ weights|, "moved": max |update|}}`."""

import json
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_meta as km  # noqa: E402
from tests.test_maml import image_episode  # noqa: E402

FACTORIES = {
    "MAML": lambda: km.MAML(km.learners.conv4(3, filters=4), inner_lr=0.3, inner_steps=2),
    "Reptile": lambda: km.Reptile(km.learners.conv4(3, filters=4), inner_lr=0.3, inner_steps=2),
    "ProtoNet": lambda: km.ProtoNet(km.learners.conv4_embedding(filters=4)),
}


def trained(name, strategy, inputs, labels, weights=None):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = FACTORIES[name]()
        model.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.build({key: value.shape for key, value in inputs.items()})
        if weights is not None:
            model.set_weights(weights)
    initial = [w.copy() for w in model.get_weights()]
    model.fit(tf.data.Dataset.from_tensors((inputs, labels)), epochs=1, verbose=0)
    return initial, model.get_weights()


def main(names):
    inputs, labels = image_episode(0, tasks=4)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    for name in names:
        initial, single = trained(name, tf.distribute.get_strategy(), inputs, labels)
        _, distributed = trained(name, mirrored, inputs, labels, weights=initial)
        results[name] = {
            "difference": max(float(np.abs(a - b).max()) for a, b in zip(single, distributed)),
            "moved": max(float(np.abs(a - b).max()) for a, b in zip(single, initial)),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
