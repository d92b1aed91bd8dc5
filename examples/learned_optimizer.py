"""Meta-trains LearnedOptimizers ("learning to learn by gradient descent by
gradient descent"), one on random quadratics and one on small sinusoid MLPs
as in the paper (`--joint`: one on both), then compares them with Adam,
RMSprop and SGD, each at its best learning rate of a small grid, on held-out
problems: a table of mean losses (± 95% CI over problems) and a figure of
the loss curves.

    python examples/learned_optimizer.py --iterations=1000 --out=learned_optimizer.png

Training problems have seeds `(seed, i)`, held-out problems `(seed + 1, 0)`.
The optimizer is meta-trained on a horizon of 100 steps and tested on
`--steps` steps (beyond 100: generalisation to longer runs).
"""

import os
import time

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import keras_meta as km  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("iterations", 1000, "Meta-training truncations (20 steps each).")
flags.DEFINE_bool("joint", False, "Meta-train one optimizer on both families.")
flags.DEFINE_float("meta_learning_rate", 0.01, "Adam learning rate of the meta-training.")
flags.DEFINE_integer("batch_size", 128, "Problems per family and truncation.")
flags.DEFINE_integer("steps", 200, "Optimisation steps on the held-out problems.")
flags.DEFINE_integer("test_problems", 200, "Held-out problems per family.")
flags.DEFINE_integer("seed", 0, "Seed of the weights and of the training problems.")
flags.DEFINE_string("out", "learned_optimizer.png", "Figure of the loss curves.")

FAMILIES = {"quadratic (10-d)": km.optimizers.QuadraticProblems(),
            "sinusoid MLP 1-20-1": km.optimizers.SinusoidMLPProblems()}
GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
BASELINES = {"Adam": keras.optimizers.Adam, "RMSprop": keras.optimizers.RMSprop,
             "SGD": keras.optimizers.SGD}
REPORTED_STEPS = (10, 50, 100, 200)


def curves(optimizer, family):
    return km.optimizers.loss_curves(optimizer, family, FLAGS.steps,
                                     batch_size=FLAGS.test_problems, seed=(FLAGS.seed + 1, 0))


def best_baseline(make, family):
    """The learning rate of `GRID` with the lowest mean loss after 100 steps, and its curves."""
    results = {}
    for rate in GRID:
        losses = curves(make(rate), family)
        final = losses[min(100, FLAGS.steps)].mean()
        if np.isfinite(final):
            results[rate] = (final, losses)
    rate = min(results, key=lambda r: results[r][0])
    return rate, results[rate][1]


def meta_trained(problems, name):
    """A LearnedOptimizer meta-trained on `problems` (a family or a list)."""
    keras.utils.set_random_seed(FLAGS.seed)
    optimizer = km.optimizers.LearnedOptimizer()
    start = time.perf_counter()
    history = km.optimizers.meta_train(
        optimizer, problems, FLAGS.iterations, batch_size=FLAGS.batch_size,
        meta_optimizer=keras.optimizers.Adam(FLAGS.meta_learning_rate), seed=FLAGS.seed)
    print(f"meta-training on {name}: {FLAGS.iterations} truncations in "
          f"{time.perf_counter() - start:.0f} s, meta-loss {np.mean(history[:50]):.3f} "
          f"(first 50) -> {np.mean(history[-50:]):.3f} (last 50)")
    return optimizer


def main(argv):
    del argv
    if FLAGS.joint:
        joint = meta_trained(list(FAMILIES.values()), "both families")
        optimizers = {title: joint for title in FAMILIES}
    else:
        optimizers = {title: meta_trained(family, title) for title, family in FAMILIES.items()}
    figure, axes = plt.subplots(1, len(FAMILIES), figsize=(6 * len(FAMILIES), 4.5))
    steps = [s for s in REPORTED_STEPS if s <= FLAGS.steps]
    for ax, (title, family) in zip(axes, FAMILIES.items()):
        runs = {"learned": curves(optimizers[title], family)}
        for name, make in BASELINES.items():
            rate, losses = best_baseline(lambda r, make=make: make(learning_rate=r), family)
            runs[f"{name} (lr {rate:g})"] = losses
        print(f"\n{title}: mean loss over {FLAGS.test_problems} held-out problems ± 95% CI")
        print("| optimizer | " + " | ".join(f"step {s}" for s in steps) + " |")
        print("| --- |" + " --- |" * len(steps))
        for name, losses in runs.items():
            cells = []
            for s in steps:
                mean, half_width = km.stats.mean_confidence_interval(losses[s])
                cells.append(f"{mean:.4g} ± {half_width:.2g}")
            print(f"| {name} | " + " | ".join(cells) + " |")
            ax.plot(losses.mean(axis=1), label=name, linewidth=2.5 if name == "learned" else 1.2)
        ax.axvline(100, color="gray", linestyle=":", linewidth=1)
        ax.set(title=f"held-out {title}", xlabel="step", ylabel="mean loss", yscale="log")
        ax.legend()
    figure.tight_layout()
    figure.savefig(FLAGS.out, dpi=120)
    print(f"\nwrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
