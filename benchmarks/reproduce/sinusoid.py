"""The sinusoid table (MAML paper protocol): MAML, FOMAML, Reptile, Meta-SGD
and the jointly pre-trained FineTune baseline, each meta-trained with K = 10
for `--iterations` (default 70,000, the paper's), then the query MSE on 600
new tasks after 1, 5 and 10 inner steps for K = 5, 10 and 20 (mean ± 95%
CI); and `figure.png`, one task fitted by MAML and by the pre-trained
network, as the paper's Figure 2.

    python -m benchmarks.reproduce.sinusoid                    # all, 70,000 iterations
    python -m benchmarks.reproduce.sinusoid --only=maml,finetune
    python -m benchmarks.reproduce.sinusoid --smoke            # a few iterations, temp dir
    python -m benchmarks.reproduce.tables                      # then the README's tables
"""

import json
import os

import numpy as np

from benchmarks.reproduce import runner, runs

FIGURE_MODELS = {"maml": "MAML", "finetune": "pretrained"}
FIGURE_SHOTS = (5, 10)
FIGURE_STEPS = (0, 1, 10)


def one_task(shots, seed=0):
    """A sinusoid task of the MAML family (the same one for every `shots`):
    `(support_x [shots, 1], support_y, grid [200, 1], truth [200, 1])`."""
    rng = np.random.default_rng(seed)
    amplitude, phase = rng.uniform(0.1, 5.0), rng.uniform(0, np.pi)
    support_x = rng.uniform(-5, 5, (max(runs.SINUSOID_SHOTS), 1)).astype("float32")[:shots]
    grid = np.linspace(-5, 5, 200, dtype="float32")[:, None]
    return (support_x, (amplitude * np.sin(support_x - phase)).astype("float32"), grid,
            amplitude * np.sin(grid - phase))


def tested_model(scratch_run_dir):
    """The model a finished run tested (see `keras_meta.cli.models.evaluation_model`).
    TensorFlow is imported here, not while the trainings run in subprocesses."""
    import keras

    from keras_meta.cli import config as run_config
    from keras_meta.cli import models

    with open(os.path.join(scratch_run_dir, "results.json"), encoding="utf-8") as file:
        settings = json.load(file)["config"]
    config = run_config.Config(**{**settings, "test_shots": tuple(settings["test_shots"])})
    model = keras.saving.load_model(os.path.join(scratch_run_dir, "model.keras"))
    return models.evaluation_model(config, model)


def write_figure(results_dir, scratch_dir):
    """`<results_dir>/sinusoid/figure.png`: a row for each of the MAML and
    FineTune runs whose model is in `scratch_dir`."""
    from matplotlib.figure import Figure

    from keras_meta import evaluation, plot

    done = {run.algorithm: os.path.join(scratch_dir, run.table, run.name)
            for run in runs.sinusoid_runs() if run.algorithm in FIGURE_MODELS}
    done = {algorithm: path for algorithm, path in done.items()
            if os.path.exists(os.path.join(path, "model.keras"))}
    if not done:
        print("figure: needs the maml or finetune run (its model in the scratch directory)")
        return
    figure = Figure(figsize=(6 * len(FIGURE_SHOTS), 4 * len(done)))
    axes = figure.subplots(len(done), len(FIGURE_SHOTS), sharey=True, squeeze=False)
    for row, (algorithm, path) in enumerate(done.items()):
        label = FIGURE_MODELS[algorithm]
        model = tested_model(path)
        predict = evaluation.predictions_per_step_function(model, max(FIGURE_STEPS))
        for ax, shots in zip(axes[row], FIGURE_SHOTS):
            support_x, support_y, grid, truth = one_task(shots)
            predictions = predict({"support_x": support_x[None], "support_y": support_y[None],
                                   "query_x": grid[None]})[0]
            ax.plot(grid[:, 0], truth[:, 0], color="red", label="ground truth")
            plot.regression_fit(support_x, support_y, grid, predictions, steps=FIGURE_STEPS, ax=ax)
            ax.set_title(f"{label}, K={shots}")
    path = os.path.join(results_dir, "sinusoid", "figure.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    figure.savefig(path, dpi=80, bbox_inches="tight")
    print(f"figure: {path}")


def main(argv=None):
    parser = runner.argument_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=runs.SINUSOID_ITERATIONS,
                        help="Meta-iterations of each run (the paper's 70,000 by default; a "
                             "multiple of 10).")
    args = parser.parse_args(argv)
    if args.iterations < 10 or args.iterations % 10:
        parser.error(f"--iterations={args.iterations} must be a positive multiple of 10")
    runner.main(runs.sinusoid_runs(args.iterations), args, after=write_figure)


if __name__ == "__main__":
    main()
