"""Run as a script: checkpoints across strategies, for the algorithms named
on the command line. A model trained one step under MirroredStrategy (2
logical CPU devices) is saved (`model.save` .keras and `save_weights`) and
restored without a strategy; a model trained without one is restored inside
the strategy's scope. Prints one JSON line: `{algorithm: {direction:
{"distributed": are the restored variables mirrored?, "weights": max |Δ
weights|, "predictions": max |Δ predictions|}}}` for the
directions "mirrored->none" and "none->mirrored" and each checkpoint format
(".keras", ".weights.h5"); predictions are each model's own (distributed
when under the strategy) on a meta-batch of 4 tasks."""

import json
import pathlib
import sys
import tempfile

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests.distribute_worker import FACTORIES  # noqa: E402
from tests.test_maml import image_episode  # noqa: E402


def compiled(name):
    factory, learning_rate = FACTORIES[name]
    keras.utils.set_random_seed(0)
    model = factory()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def restored(name, path, strategy, shapes):
    """The checkpoint at `path` restored in `strategy`'s scope."""
    with strategy.scope():
        if path.suffix == ".keras":
            return keras.saving.load_model(path)
        model = compiled(name)
        model.build(shapes)
    model.load_weights(path)
    return model


def differences(saved, loaded, inputs):
    return {
        "distributed": isinstance(loaded.weights[0].value, tf.distribute.DistributedValues),
        "weights": max(float(np.abs(a - b).max())
                       for a, b in zip(saved.get_weights(), loaded.get_weights())),
        "predictions": float(np.abs(saved.predict(inputs, verbose=0)
                                    - loaded.predict(inputs, verbose=0)).max()),
    }


def main(names, directory):
    inputs, labels = image_episode(0, tasks=4)
    strategies = {"mirrored": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
                  "none": tf.distribute.get_strategy()}
    results = {}
    for name in names:
        results[name] = {}
        for source, target in (("mirrored", "none"), ("none", "mirrored")):
            with strategies[source].scope():
                model = compiled(name)
            model.fit(tf.data.Dataset.from_tensors((inputs, labels)), epochs=1, verbose=0)
            for suffix in (".keras", ".weights.h5"):
                path = directory / f"{name}_{source}{suffix}"
                model.save(path) if suffix == ".keras" else model.save_weights(path)
                loaded = restored(name, path, strategies[target],
                                  {key: value.shape for key, value in inputs.items()})
                results[name][f"{source}->{target}{suffix}"] = differences(model, loaded, inputs)
    print(json.dumps(results))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        main(sys.argv[1:], pathlib.Path(directory))
