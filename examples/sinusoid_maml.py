"""Meta-trains MAML on the sinusoid family with `fit` and compares it with a
network pre-trained jointly on the same tasks and fine-tuned the same way.

Prints the query MSE on new tasks (mean ± 95% CI) after 1, 5 and 10 inner
steps, and writes a figure in the style of the MAML paper's Figure 2.

    python examples/sinusoid_maml.py --iterations=20000 --output_dir=outputs/sinusoid
"""

import os

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_meta as km  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("iterations", 20000, "Meta-iterations (and pre-training steps).")
flags.DEFINE_integer("meta_batch_size", 25, "Tasks per meta-iteration.")
flags.DEFINE_integer("shots", 10, "Support points per task during meta-training (K).")
flags.DEFINE_float("inner_lr", 0.01, "Inner SGD learning rate.")
flags.DEFINE_list("eval_shots", ["5", "10"], "Support sizes K to evaluate with.")
flags.DEFINE_list("eval_steps", ["1", "5", "10"], "Inner steps to evaluate after.")
flags.DEFINE_integer("test_tasks", 600, "New tasks to evaluate on.")
flags.DEFINE_integer("seed", 0, "Seed of weights and training tasks (test tasks use seed + 1).")
flags.DEFINE_string("output_dir", "outputs/sinusoid", "Where the figure is written.")


def meta_train(train):
    model = km.MAML(km.learners.mlp(), inner_lr=FLAGS.inner_lr, inner_steps=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(train, steps_per_epoch=FLAGS.iterations, epochs=1, verbose=2)
    return model


def pretrain_jointly(train):
    """Ordinary regression on every point of the same task stream."""
    learner = km.learners.mlp()
    learner.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    pooled = train.map(lambda inputs, query_y: (
        tf.reshape(tf.concat([inputs["support_x"], inputs["query_x"]], 1), (-1, 1)),
        tf.reshape(tf.concat([inputs["support_y"], query_y], 1), (-1, 1))))
    learner.fit(pooled, steps_per_epoch=FLAGS.iterations, epochs=1, verbose=2)
    model = km.MAML(learner, inner_lr=FLAGS.inner_lr)
    model.compile(loss="mse")
    return model


def per_task_mse(model, steps, shots):
    model.eval_inner_steps = steps
    test = km.data.sinusoid_episodes(
        shots=shots, query_shots=100, meta_batch_size=FLAGS.test_tasks, seed=FLAGS.seed + 1)
    inputs, query_y = next(iter(test))
    predictions = model.predict(inputs, batch_size=100, verbose=0)
    return np.mean((predictions - query_y.numpy()) ** 2, axis=(1, 2))


def plot_one_task(models, path):
    rng = np.random.default_rng(FLAGS.seed)
    amplitude, phase = rng.uniform(0.1, 5.0), rng.uniform(0, np.pi)
    support_x = rng.uniform(-5, 5, (1, FLAGS.shots, 1)).astype("float32")
    grid = np.linspace(-5, 5, 200, dtype="float32").reshape(1, -1, 1)
    inputs = {"support_x": support_x, "support_y": amplitude * np.sin(support_x - phase),
              "query_x": grid}
    figure, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), sharey=True)
    for axis, (name, model) in zip(axes, models.items()):
        axis.plot(grid[0, :, 0], amplitude * np.sin(grid[0, :, 0] - phase), "r", label="ground truth")
        axis.plot(support_x[0, :, 0], inputs["support_y"][0, :, 0], "^", color="purple",
                  label="support points")
        for steps, style in ((0, ":"), (1, "--"), (10, "-")):
            model.eval_inner_steps = steps
            axis.plot(grid[0, :, 0], model.predict(inputs, verbose=0)[0, :, 0], style,
                      color="green", label=f"after {steps} steps")
        axis.set_title(f"{name}, K={FLAGS.shots}")
        axis.legend(loc="lower right", fontsize=8)
    figure.savefig(path, dpi=100, bbox_inches="tight")


def main(argv):
    del argv
    tf.get_logger().setLevel("ERROR")  # each step count traces its own predict function
    keras.utils.set_random_seed(FLAGS.seed)
    train = km.data.sinusoid_episodes(
        shots=FLAGS.shots, meta_batch_size=FLAGS.meta_batch_size, seed=FLAGS.seed)
    models = {"MAML": meta_train(train), "pretrained": pretrain_jointly(train)}
    print(f"\nQuery MSE on {FLAGS.test_tasks} new tasks (seed {FLAGS.seed + 1}), mean ± 95% CI, "
          f"after {FLAGS.iterations} iterations:")
    print(f"{'K':>3} {'steps':>5}" + "".join(f"{name:>20}" for name in models))
    for shots in map(int, FLAGS.eval_shots):
        for steps in map(int, FLAGS.eval_steps):
            cells = [km.stats.mean_confidence_interval(per_task_mse(m, steps, shots))
                     for m in models.values()]
            print(f"{shots:>3} {steps:>5}" + "".join(f"{m:>12.3f} ± {h:<5.3f}" for m, h in cells))
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    path = os.path.join(FLAGS.output_dir, "sinusoid_maml.png")
    plot_one_task(models, path)
    print(f"Figure: {path}")


if __name__ == "__main__":
    app.run(main)
