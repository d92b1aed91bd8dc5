"""MAML-RL on 2-D navigation: return after 0-3 adaptation steps on new tasks,
against a policy pre-trained on all tasks jointly (fine-tuned the same way)
and against random initialisation (MAML paper, Figure 5's protocol at a
smaller budget).

    python benchmarks/rl_navigation.py --iterations=40 --output=benchmarks/results/rl_navigation.json
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf

import keras_meta as km


def train(inner_steps, iterations, seed, args):
    family = km.rl.Navigation2D()
    policy = km.rl.mlp_policy(2, 2, hidden=(100, 100), seed=seed)
    model = km.rl.MAMLRL(policy, family, inner_lr=args.inner_lr, inner_steps=inner_steps,
                         num_trajectories=args.trajectories, max_kl=args.max_kl,
                         cg_iterations=args.cg_iterations, seed=seed)
    model.compile()
    start = time.perf_counter()
    history = {}
    if iterations:
        history = model.fit(family.task_stream(args.meta_batch_size, seed=seed),
                            steps_per_epoch=1, epochs=iterations, verbose=2).history
    return model, time.perf_counter() - start, history


def summary(returns):
    return [km.stats.mean_confidence_interval(returns[:, k]) for k in range(returns.shape[1])]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--meta_batch_size", type=int, default=20)
    parser.add_argument("--trajectories", type=int, default=20)
    parser.add_argument("--inner_lr", type=float, default=0.1)
    parser.add_argument("--max_kl", type=float, default=0.01)
    parser.add_argument("--cg_iterations", type=int, default=10)
    parser.add_argument("--test_tasks", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None)
    parser.add_argument("--table", default=None, help="print the README table of this results "
                        "file and exit")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    test_tasks = km.rl.Navigation2D().sample_tasks(args.test_tasks, tf.constant([12345, 0]))
    horizon = km.rl.Navigation2D().horizon
    results = {"config": vars(args), "methods": {}}
    for name, inner_steps, iterations in (("maml_rl", 1, args.iterations),
                                          ("pretrained", 0, args.iterations),
                                          ("random_init", 0, 0)):
        model, seconds, history = train(inner_steps, iterations, args.seed, args)
        start = time.perf_counter()
        returns = model.adaptation_returns(test_tasks, steps=3, seed=1)
        phases = inner_steps + 1
        results["methods"][name] = {
            "returns": [[float(v) for v in row] for row in returns],
            "mean_ci": summary(returns),
            "meta_iterations": iterations,
            "train_seconds": seconds,
            "seconds_per_iteration": seconds / iterations if iterations else None,
            "train_env_steps": iterations * args.meta_batch_size * args.trajectories * horizon
            * phases,
            "eval_seconds": time.perf_counter() - start,
            "history": {k: [float(x) for x in v] for k, v in history.items()},
        }
        print(name, [f"{m:.1f} ± {h:.1f}" for m, h in summary(returns)], f"{seconds:.0f} s",
              flush=True)
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)



def table(path):
    """The README's Markdown table of a results file."""
    with open(path) as f:
        results = json.load(f)
    labels = {"maml_rl": "MAML-RL (TRPO outer step, DiCE inner surrogate)",
              "pretrained": "pre-trained on all tasks (TRPO), fine-tuned the same way",
              "random_init": "random initialisation"}
    lines = ["| policy | 0 steps | 1 step | 2 steps | 3 steps | meta-iterations | "
             "environment steps | wall time |", "|---|---|---|---|---|---|---|---|"]
    for name, method in results["methods"].items():
        cells = [f"{m:.1f} ± {h:.1f}" for m, h in method["mean_ci"]]
        wall = f"{method['train_seconds']:.0f} s" if method["meta_iterations"] else "—"
        lines.append(f"| {labels[name]} | " + " | ".join(cells) +
                     f" | {method['meta_iterations']} | {method['train_env_steps']:,} | {wall} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
