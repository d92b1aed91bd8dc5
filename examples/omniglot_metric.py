"""Trains a metric learner (ProtoNet, Matching Networks, Relation Network) or
a baseline (fine-tuning, multi-task) on Omniglot and reports its test
accuracy over new tasks: mean ± 95% confidence interval.

Offline by default: the packaged Omniglot "minimal" split (train: 5
alphabets with rotations; test: Sanskrit and Tagalog, 59 characters).

    python examples/omniglot_metric.py --model=protonet --ways=5 --shots=1 \
        --iterations=1000 --test_tasks=600
    python examples/omniglot_metric.py --model=finetune --ways=20 --shots=1
    python examples/omniglot_metric.py --model=protonet --within_alphabet_trials=1000

`--within_alphabet_trials=N` also runs N of Lake et al.'s one-shot trials on
the test alphabets: 20 characters of one alphabet (Tagalog's 17), one
drawer's drawing of each as the support set, another drawer's drawings as
the queries; it prints the error, as Lake et al. report it.
"""

import os
import time

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_meta as km  # noqa: E402

MODELS = ("protonet", "matching", "matching_fce", "relation", "finetune", "finetune_cosine",
          "multitask")

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "protonet", MODELS, "What to train.")
flags.DEFINE_integer("ways", 5, "Classes per task (training and test).")
flags.DEFINE_integer("shots", 1, "Support examples per class.")
flags.DEFINE_integer("query_shots", 15, "Query examples per class at test time.")
flags.DEFINE_integer("train_query_shots", 5, "Query examples per class during training.")
flags.DEFINE_integer("iterations", 1000, "Training steps (episodes batches, or pre-training batches).")
flags.DEFINE_integer("meta_batch_size", 8, "Tasks per training step.")
flags.DEFINE_integer("batch_size", 64, "Examples per pre-training step (finetune).")
flags.DEFINE_integer("filters", 64, "Channels of the conv4 embedding.")
flags.DEFINE_integer("head_steps", 100, "SGD steps fitting each task's head (baselines).")
flags.DEFINE_float("head_lr", 0.1, "Their learning rate.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("test_tasks", 600, "Test tasks to evaluate on.")
flags.DEFINE_integer("seed", 0, "Seed of weights and training data (test tasks use seed + 1).")
flags.DEFINE_bool("train_within_alphabet", False, "Train on within-alphabet episodes (each "
                  "task's characters from one alphabet, support and queries by other drawers).")
flags.DEFINE_integer("within_alphabet_trials", 0, "Also run this many 20-way within-alphabet "
                     "one-shot trials on the test alphabets (0: none).", lower_bound=0)
flags.DEFINE_integer("image_size", 28, "Side of the images (the PNGs are 105).", lower_bound=1)
flags.DEFINE_bool("learn_scale", False, "ProtoNet: learn the logits' scale.")
flags.DEFINE_integer("refinement_steps", 0, "ProtoNet: transductive refinement steps of the "
                     "prototypes, in training and test.", lower_bound=0)
flags.DEFINE_list("test_refinement_steps", [], "ProtoNet: also run the within-alphabet trials "
                  "with these refinement steps at test only, e.g. 1,3.")

TRIAL_WAYS = 20


def build_model(num_classes):
    """The model named by --model and the loss to compile it with."""
    crossentropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    shape = (FLAGS.image_size, FLAGS.image_size, 1)
    embedding = km.learners.conv4_embedding(filters=FLAGS.filters, input_shape=shape)
    head = dict(steps=FLAGS.head_steps, learning_rate=FLAGS.head_lr)
    if FLAGS.model == "protonet":
        return km.ProtoNet(embedding, learn_scale=FLAGS.learn_scale,
                           refinement_steps=FLAGS.refinement_steps), crossentropy
    if FLAGS.model.startswith("matching"):
        return km.MatchingNet(
            embedding, full_context_embeddings=FLAGS.model == "matching_fce"), crossentropy
    if FLAGS.model == "relation":
        model = km.RelationNet(km.learners.conv4_embedding(
            filters=FLAGS.filters, pooled_blocks=2, flatten=False))
        return model, model.default_loss()
    if FLAGS.model.startswith("finetune"):
        kind = "cosine" if FLAGS.model == "finetune_cosine" else "linear"
        return km.baselines.FineTune(embedding, num_classes=num_classes, head=kind,
                                     **head), crossentropy
    return km.baselines.MultiTask(embedding, **head), crossentropy


def training_data():
    """Labelled batches of every training class (finetune) or episodes."""
    if FLAGS.model.startswith("finetune"):
        return km.data.omniglot_batches("train", batch_size=FLAGS.batch_size, seed=FLAGS.seed)
    episodes = km.data.omniglot_episodes(
        "train", ways=FLAGS.ways, shots=FLAGS.shots, query_shots=FLAGS.train_query_shots,
        meta_batch_size=FLAGS.meta_batch_size, seed=FLAGS.seed,
        within_alphabet=FLAGS.train_within_alphabet, image_size=FLAGS.image_size)
    return episodes, None


def test_accuracies(model):
    """Accuracy of each of --test_tasks new tasks, `[test_tasks]`."""
    tasks_per_batch = 50
    test = km.data.omniglot_episodes(
        "test", ways=FLAGS.ways, shots=FLAGS.shots, query_shots=FLAGS.query_shots,
        meta_batch_size=tasks_per_batch, seed=FLAGS.seed + 1, image_size=FLAGS.image_size)
    accuracies = []
    for inputs, query_y in test.take(-(-FLAGS.test_tasks // tasks_per_batch)):
        predictions = model.predict_on_batch(inputs)
        accuracies.append(np.mean(np.argmax(predictions, -1) == query_y.numpy(), axis=1))
    return np.concatenate(accuracies)[:FLAGS.test_tasks]


def within_alphabet_accuracies(model):
    """Accuracy of each of --within_alphabet_trials trials, `[trials]`."""
    trials = km.data.omniglot_episodes(
        "test", ways=TRIAL_WAYS, shots=1, query_shots=1, meta_batch_size=20,
        seed=FLAGS.seed + 1, within_alphabet=True, image_size=FLAGS.image_size)
    return km.evaluation.evaluate_tasks(model, trials, FLAGS.within_alphabet_trials).accuracy


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    train, num_classes = training_data()
    model, loss = build_model(num_classes)
    model.compile(optimizer=keras.optimizers.Adam(FLAGS.learning_rate), loss=loss,
                  metrics=["accuracy"])
    start = time.time()
    model.fit(train, steps_per_epoch=FLAGS.iterations, epochs=1, verbose=2)
    train_seconds = time.time() - start
    mean, half_width = km.stats.mean_confidence_interval(test_accuracies(model))
    print(f"{FLAGS.model} Omniglot-minimal test {FLAGS.ways}-way {FLAGS.shots}-shot: "
          f"{100 * mean:.2f} ± {100 * half_width:.2f}% over {FLAGS.test_tasks} tasks "
          f"({FLAGS.iterations} iterations, seed {FLAGS.seed}, {train_seconds:.0f} s training)")
    if FLAGS.within_alphabet_trials:
        mean, half_width = km.stats.mean_confidence_interval(within_alphabet_accuracies(model))
        print(f"{FLAGS.model} Omniglot-minimal test {TRIAL_WAYS}-way within-alphabet one-shot "
              f"error: {100 * (1 - mean):.2f} ± {100 * half_width:.2f}% over "
              f"{FLAGS.within_alphabet_trials} trials")
        for steps in map(int, FLAGS.test_refinement_steps):
            refined = km.ProtoNet(model.embedding, scale=float(model.logit_scale()),
                                  refinement_steps=steps)
            refined.compile(loss=loss)
            mean, half_width = km.stats.mean_confidence_interval(
                within_alphabet_accuracies(refined))
            print(f"{FLAGS.model} with {steps} refinement steps at test: {TRIAL_WAYS}-way "
                  f"within-alphabet one-shot error: {100 * (1 - mean):.2f} ± "
                  f"{100 * half_width:.2f}% over {FLAGS.within_alphabet_trials} trials")


if __name__ == "__main__":
    app.run(main)
