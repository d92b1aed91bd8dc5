"""Meta-trains SNAIL, LEO or the LSTM meta-learner (`--model`) on Omniglot
episodes with `fit`, offline, and reports the few-shot accuracy on new test
tasks (mean ± 95% CI over `--test_tasks` tasks) and the seconds per
meta-iteration.

By default: the packaged `omniglot_minimal` split (train: 5 alphabets, 157
characters × 4 rotations; test: Sanskrit and Tagalog, 59 characters),
5-way 1-shot, conv4 backbones of `--filters` channels, Adam.

    python examples/omniglot_model_based.py --model=snail --iterations=1000
    python examples/omniglot_model_based.py --model=leo --iterations=1000
    python examples/omniglot_model_based.py --model=meta_lstm --iterations=1000

`examples/omniglot_model_based_short_runs.sh` runs the three with the
settings of the README's short-run table.
"""

import os
import time

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_meta as km  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "snail", ["snail", "leo", "meta_lstm"], "Model to meta-train.")
flags.DEFINE_integer("iterations", 1000, "Meta-iterations (a multiple of --log_every).")
flags.DEFINE_integer("log_every", 100, "Meta-iterations per logged Keras epoch.")
flags.DEFINE_integer("meta_batch_size", 8, "Tasks per meta-iteration.")
flags.DEFINE_integer("ways", 5, "Classes per task.")
flags.DEFINE_integer("shots", 1, "Support examples per class.")
flags.DEFINE_integer("query_shots", 15, "Query examples per class at test time.")
flags.DEFINE_integer("train_query_shots", 5, "Query examples per class during training.")
flags.DEFINE_integer("filters", 64, "Channels of the conv4 backbone.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_float("global_clipnorm", None, "Clip the meta-gradient to this global norm.")
flags.DEFINE_integer("inner_steps", 5, "Inner steps (LEO: latent steps; MetaLSTM: LSTM steps).")
flags.DEFINE_integer("latent_size", 16, "LEO: size of the latent codes.")
flags.DEFINE_integer("snail_filters", 128, "SNAIL: channels of each dense block.")
flags.DEFINE_list("snail_attention", ["64:32", "256:128", "512:256"],
                  "SNAIL: key_size:value_size of each attention block.")
flags.DEFINE_integer("test_tasks", 600, "Test tasks to evaluate on.")
flags.DEFINE_integer("seed", 0, "Seed of weights and training tasks (test tasks use seed + 1).")

flags.register_validator("iterations", lambda n: n > 0 and n % FLAGS.log_every == 0,
                         "--iterations must be a positive multiple of --log_every.")

EVAL_BATCH = 20  # test tasks per evaluation batch


def build_model():
    """The model named by --model on a conv4 backbone."""
    if FLAGS.model == "snail":
        attention = [tuple(int(size) for size in sizes.split(":")) for sizes in FLAGS.snail_attention]
        return km.SNAIL(km.learners.conv4_embedding(filters=FLAGS.filters), ways=FLAGS.ways,
                        shots=FLAGS.shots, filters=FLAGS.snail_filters, attention=attention)
    if FLAGS.model == "leo":
        return km.LEO(km.learners.conv4_embedding(filters=FLAGS.filters),
                      latent_size=FLAGS.latent_size, inner_steps=FLAGS.inner_steps,
                      finetune_steps=FLAGS.inner_steps)
    return km.MetaLSTM(km.learners.conv4(FLAGS.ways, filters=FLAGS.filters),
                       inner_steps=FLAGS.inner_steps)


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    shape = dict(ways=FLAGS.ways, shots=FLAGS.shots)
    train = km.data.omniglot_episodes("train", query_shots=FLAGS.train_query_shots,
                                      meta_batch_size=FLAGS.meta_batch_size, seed=FLAGS.seed,
                                      **shape)
    test = km.data.omniglot_episodes("test", query_shots=FLAGS.query_shots,
                                     meta_batch_size=EVAL_BATCH, seed=FLAGS.seed + 1, **shape)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(FLAGS.learning_rate,
                                                  global_clipnorm=FLAGS.global_clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(train, steps_per_epoch=FLAGS.log_every, epochs=FLAGS.iterations // FLAGS.log_every,
              verbose=2)
    trained = time.perf_counter() - start
    accuracy, half_width = km.stats.mean_confidence_interval(
        km.evaluation.evaluate_tasks(model, test, FLAGS.test_tasks).accuracy)
    print(f"\n{FLAGS.model}: {trained / FLAGS.iterations:.3f} s per meta-iteration")
    print(f"{FLAGS.ways}-way {FLAGS.shots}-shot accuracy on {FLAGS.test_tasks} omniglot_minimal "
          f"test tasks (seed {FLAGS.seed + 1}) after {FLAGS.iterations} iterations of "
          f"{FLAGS.meta_batch_size} tasks ({trained:.0f} s): "
          f"{100 * accuracy:.2f}% ± {100 * half_width:.2f}% (95% CI)")


if __name__ == "__main__":
    app.run(main)
