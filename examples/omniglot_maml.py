"""Meta-trains MAML (or another gradient-based algorithm: `--algorithm`) on
Omniglot episodes with `fit`, offline, and reports the few-shot accuracy on
new test tasks (mean ± 95% CI) and the seconds per meta-iteration.

By default: the packaged `omniglot_minimal` split (train: 5 alphabets,
157 characters × 4 rotations; test: Sanskrit and Tagalog, 59 characters),
5-way 1-shot, conv4, inner lr 0.4, 1 inner step in training and 3 at test,
Adam 1e-3. A short run (about 10 minutes on 2 CPU cores):

    python examples/omniglot_maml.py --iterations=400 --meta_batch_size=8

The other gradient-based algorithms, with the same budget:

    python examples/omniglot_maml.py --algorithm=fomaml
    python examples/omniglot_maml.py --algorithm=reptile --inner_steps=3 --inner_lr=0.2
    python examples/omniglot_maml.py --algorithm=meta_sgd
    python examples/omniglot_maml.py --algorithm=anil
    python examples/omniglot_maml.py --algorithm=maml_plus_plus --inner_steps=2 --eval_inner_steps=2

The MAML paper's run is `--iterations=60000 --meta_batch_size=32
--source=omniglot` (full Omniglot, needs TFDS to download it once).
"""

import os
import time

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_meta as km  # noqa: E402

FLAGS = flags.FLAGS
ALGORITHMS = {
    "maml": km.MAML,
    "fomaml": km.FOMAML,
    "reptile": km.Reptile,
    "meta_sgd": lambda learner, inner_lr, **kwargs: km.MetaSGD(learner, inner_lr_init=inner_lr,
                                                               **kwargs),
    "anil": km.ANIL,
    "maml_plus_plus": km.MAMLPlusPlus,
}
flags.DEFINE_enum("algorithm", "maml", list(ALGORITHMS), "Gradient-based algorithm to meta-train.")
flags.DEFINE_integer("iterations", 400, "Meta-iterations (a multiple of --log_every).")
flags.DEFINE_integer("log_every", 50, "Meta-iterations per logged Keras epoch.")
flags.DEFINE_integer("meta_batch_size", 8, "Tasks per meta-iteration.")
flags.DEFINE_integer("ways", 5, "Classes per task.")
flags.DEFINE_integer("shots", 1, "Support examples per class.")
flags.DEFINE_integer("query_shots", 15, "Query examples per class.")
flags.DEFINE_float("inner_lr", 0.4, "Inner SGD learning rate.")
flags.DEFINE_integer("inner_steps", 1, "Inner steps while meta-training.")
flags.DEFINE_integer("eval_inner_steps", 3, "Inner steps on test tasks.")
flags.DEFINE_bool("first_order", False, "First-order MAML (FOMAML); MAML, Meta-SGD and ANIL only.")
flags.DEFINE_integer("test_tasks", 600, "Test tasks to evaluate on.")
flags.DEFINE_string("split", "test", "Split the test tasks come from.")
flags.DEFINE_enum("source", "omniglot_minimal", ["omniglot_minimal", "omniglot"], "Omniglot source.")
flags.DEFINE_integer("seed", 0, "Seed of weights and training tasks (test tasks use seed + 1).")
flags.DEFINE_string("data_dir", None, "TFDS data directory (TFDS's default when unset).")

flags.register_validator("iterations", lambda n: n > 0 and n % FLAGS.log_every == 0,
                         "--iterations must be a positive multiple of --log_every.")

EVAL_BATCH = 20  # test tasks per evaluation batch


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    episode_shape = dict(ways=FLAGS.ways, shots=FLAGS.shots, query_shots=FLAGS.query_shots,
                         source=FLAGS.source, data_dir=FLAGS.data_dir)
    train = km.data.omniglot_episodes("train", meta_batch_size=FLAGS.meta_batch_size,
                                      seed=FLAGS.seed, **episode_shape)
    test = km.data.omniglot_episodes(FLAGS.split, meta_batch_size=EVAL_BATCH,
                                     seed=FLAGS.seed + 1, **episode_shape)
    options = {"first_order": True} if FLAGS.first_order else {}
    model = ALGORITHMS[FLAGS.algorithm](
        km.learners.conv4(FLAGS.ways), inner_lr=FLAGS.inner_lr, inner_steps=FLAGS.inner_steps,
        eval_inner_steps=FLAGS.eval_inner_steps, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(train, steps_per_epoch=FLAGS.log_every, epochs=FLAGS.iterations // FLAGS.log_every,
              verbose=2)
    trained = time.perf_counter() - start
    accuracy, half_width = km.stats.mean_confidence_interval(
        km.evaluation.evaluate_tasks(model, test, FLAGS.test_tasks).accuracy)
    print(f"\n{FLAGS.algorithm}: {trained / FLAGS.iterations:.2f} s per meta-iteration")
    print(f"{FLAGS.ways}-way {FLAGS.shots}-shot accuracy on {FLAGS.test_tasks} {FLAGS.source} "
          f"{FLAGS.split} tasks (seed {FLAGS.seed + 1}) after {FLAGS.iterations} iterations of "
          f"{FLAGS.meta_batch_size} tasks ({trained:.0f} s, {FLAGS.eval_inner_steps} inner steps "
          f"at test): {100 * accuracy:.2f}% ± {100 * half_width:.2f}% (95% CI)")


if __name__ == "__main__":
    app.run(main)
