"""Meta-trains MAML on sinusoids with keras_meta's callbacks and plots the run.

`FewShotEvaluation` adds the test MSE over new tasks (mean ± 95% CI, and
after each inner step) to the logs that `History`, `CSVLogger` and
`TensorBoard` record; `AdaptationPlot` draws a test task's fit every few
epochs; `km.plot` turns the CSV log and the final per-task results into one
figure (about 2 minutes on 2 CPU cores):

    python examples/sinusoid_callbacks.py --output_dir=outputs/sinusoid_callbacks
"""

import os

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import keras_meta as km  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("iterations", 4000, "Meta-iterations (a multiple of 10).")
flags.DEFINE_integer("test_tasks", 200, "New tasks per evaluation.")
flags.DEFINE_integer("eval_inner_steps", 10, "Inner steps on test tasks.")
flags.DEFINE_integer("seed", 0, "Seed of weights and training tasks (test tasks use seed + 1).")
flags.DEFINE_string("output_dir", "outputs/sinusoid_callbacks", "Where logs and figures go.")


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    train = km.data.sinusoid_episodes(shots=10, meta_batch_size=25, seed=FLAGS.seed)
    test = km.data.sinusoid_episodes(shots=10, meta_batch_size=100, seed=FLAGS.seed + 1)
    model = km.MAML(km.learners.mlp(hidden=(40, 40)), inner_lr=0.01, inner_steps=1,
                    eval_inner_steps=FLAGS.eval_inner_steps)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    evaluation = km.callbacks.FewShotEvaluation(test, num_tasks=FLAGS.test_tasks)
    csv_path = os.path.join(FLAGS.output_dir, "history.csv")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    model.fit(train, steps_per_epoch=FLAGS.iterations // 10, epochs=10, verbose=2, callbacks=[
        evaluation,  # first: the callbacks below read what it adds to the logs
        km.callbacks.AdaptationPlot(test, os.path.join(FLAGS.output_dir, "plots"),
                                    every_n_epochs=5),
        keras.callbacks.CSVLogger(csv_path),
        keras.callbacks.TensorBoard(os.path.join(FLAGS.output_dir, "logs")),
    ])

    figure = Figure(figsize=(15, 4))
    curves, steps, fit = figure.subplots(1, 3)
    km.plot.learning_curves(csv_path, metrics=["loss", "test_loss"],
                            steps_per_epoch=FLAGS.iterations // 10, ax=curves)
    curves.set_yscale("log")
    curves.set_title("meta-training: query MSE (test: mean ± 95% CI)")
    km.plot.by_inner_step(evaluation.results.loss_per_step, ylabel="test MSE", ax=steps)
    steps.set_title(f"MSE after each inner step, {FLAGS.test_tasks} new tasks")
    plotter = km.callbacks.AdaptationPlot(test, FLAGS.output_dir)
    plotter.set_model(model)
    inputs, query_y = next(test.as_numpy_iterator())
    plotter.plot_regression(inputs, query_y, ax=fit)
    fit.set_title("one new task (K = 10)")
    path = os.path.join(FLAGS.output_dir, "sinusoid_callbacks.png")
    figure.savefig(path, dpi=70, bbox_inches="tight")
    logs = evaluation.results.summary()
    print(f"test MSE after {FLAGS.eval_inner_steps} steps on {FLAGS.test_tasks} new tasks: "
          f"{logs['test_loss']:.3f} ± {logs['test_loss_ci']:.3f} (95% CI)\nFigure: {path}")


if __name__ == "__main__":
    app.run(main)
