"""Run as a script: one MirroredStrategy step over 2 logical CPU devices
against one single-device step on the same global meta-batch, for the
algorithms named on the command line. Prints one JSON line:
`{algorithm: {"difference": max |Δ weights|, "moved": max |update| of a
trainable weight, "loss_difference": |Δ logged loss|}}`.

The distributed model is built by `fit` (in the strategy's scope) and
then given the single-device model's initial weights."""

import json
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_meta as km  # noqa: E402
from tests.test_maml import image_episode  # noqa: E402

# name: (model factory, outer SGD learning rate). A step of the metric
# learners and baselines is as exact as float32 allows only up to about
# 1e-5 × their update: reordering the tasks of the meta-batch on one device
# moves ProtoNet's weights by 1.1e-5 at rate 0.5, MatchingNet's by 7e-5.
FACTORIES = {
    "MAML": (lambda: km.MAML(km.learners.conv4(3, filters=4), inner_lr=0.3, inner_steps=2), 0.5),
    "Reptile": (lambda: km.Reptile(km.learners.conv4(3, filters=4), inner_lr=0.3, inner_steps=2),
                0.5),
    "ProtoNet": (lambda: km.ProtoNet(km.learners.conv4_embedding(filters=4)), 0.1),
    "ProtoNetPerTask": (lambda: km.ProtoNet(km.learners.conv4_embedding(filters=4),
                                            embed_per_task=True), 0.1),
    "MatchingNet": (lambda: km.MatchingNet(km.learners.conv4_embedding(filters=4),
                                           full_context_embeddings=True), 0.02),
    "RelationNet": (lambda: km.RelationNet(
        km.learners.conv4_embedding(filters=4, pooled_blocks=2, flatten=False),
        km.algorithms.relation.default_relation_module(filters=4), objective="crossentropy"), 0.1),
    "MultiTask": (lambda: km.baselines.MultiTask(km.learners.conv4_embedding(filters=4), steps=3),
                  0.5),
    "MetaSGD": (lambda: km.MetaSGD(km.learners.conv4(3, filters=4), inner_steps=2), 0.5),
    "ANIL": (lambda: km.ANIL(km.learners.conv4(3, filters=4), inner_lr=0.3, inner_steps=2), 0.5),
    "MAMLPlusPlus": (lambda: km.MAMLPlusPlus(km.learners.conv4(3, filters=4), inner_lr=0.3,
                                             inner_steps=2), 0.5),
    "SNAIL": (lambda: km.SNAIL(km.learners.conv4_embedding(filters=4), ways=3, shots=2,
                               filters=4, attention=((4, 4), (4, 4))), 0.1),
    "LEO": (lambda: km.LEO(km.learners.conv4_embedding(filters=4), latent_size=4, inner_steps=1,
                           finetune_steps=1), 0.1),
    "MetaLSTM": (lambda: km.MetaLSTM(km.learners.conv4(3, filters=4), inner_steps=2,
                                     hidden_units=3), 0.1),
}


def trained(name, strategy, inputs, labels, weights=None):
    """`(initial weights, trained weights, logged loss, which weights are
    trainable)` of one step; the initial weights are `weights` if given."""
    factory, learning_rate = FACTORIES[name]
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = factory()
        model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = []

    def start(logs):
        if weights is not None:
            model.set_weights(weights)
        initial.extend(w.copy() for w in model.get_weights())

    history = model.fit(tf.data.Dataset.from_tensors((inputs, labels)), epochs=1, verbose=0,
                        callbacks=[keras.callbacks.LambdaCallback(on_train_begin=start)])
    trainable = [any(w is v for v in model.trainable_weights) for w in model.weights]
    return initial, model.get_weights(), history.history["loss"][0], trainable


def main(names):
    inputs, labels = image_episode(0, tasks=4)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    for name in names:
        initial, single, loss, trainable = trained(
            name, tf.distribute.get_strategy(), inputs, labels)
        _, distributed, distributed_loss, _ = trained(
            name, mirrored, inputs, labels, weights=initial)
        results[name] = {
            "difference": max(float(np.abs(a - b).max()) for a, b in zip(single, distributed)),
            "moved": max(float(np.abs(a - b).max())
                         for a, b, t in zip(single, initial, trainable) if t),
            "loss_difference": abs(loss - distributed_loss),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
