"""MAML-RL against the MAML paper's baselines (Finn et al. 2017, Figure 5's
protocol at a smaller budget): the return on new tasks after 0-3 adaptation
steps of a meta-trained policy, of a policy pre-trained on all tasks jointly
(fine-tuned the same way), of a random initialisation, and of an oracle told
the task (`km.rl.TaskInObservation`, trained like the pre-trained policy);
on 2-D navigation also the analytic oracle (straight to the goal at full
speed: the best return any policy can get). A timing line gives
environment steps per second and seconds per meta-iteration at the paper's
settings.

    python benchmarks/rl_adaptation.py --family=navigation_2d --iterations=40 \
        --output=benchmarks/results/rl_navigation.json
    python benchmarks/rl_adaptation.py --family=half_cheetah_vel --iterations=120 \
        --meta_batch_size=10 --trajectories=10 --output=benchmarks/results/rl_half_cheetah_vel.json
    python benchmarks/rl_adaptation.py --family=half_cheetah_dir --methods=timing \
        --output=benchmarks/results/rl_half_cheetah_dir.json
    python benchmarks/rl_adaptation.py --table=benchmarks/results/rl_half_cheetah_vel.json
"""

import argparse
import json
import time

import keras
import numpy as np
import tensorflow as tf

import keras_meta as km

FAMILIES = {"navigation_2d": km.rl.Navigation2D, "half_cheetah_vel": km.rl.HalfCheetahVelocity,
            "half_cheetah_dir": km.rl.HalfCheetahDirection}
# The paper's meta-batch and trajectories per task (appendix A.2).
PAPER_SIZES = {"navigation_2d": (20, 20), "half_cheetah_vel": (40, 20),
               "half_cheetah_dir": (40, 20)}


def train(family, inner_steps, iterations, seed, args, estimator="dice"):
    policy = km.rl.mlp_policy(family.observation_dim, family.action_dim, hidden=(100, 100),
                              seed=seed)
    model = km.rl.MAMLRL(policy, family, inner_lr=args.inner_lr, inner_steps=inner_steps,
                         num_trajectories=args.trajectories, max_kl=args.max_kl,
                         cg_iterations=args.cg_iterations, estimator=estimator, seed=seed)
    model.compile()
    start = time.perf_counter()
    history = {}
    if iterations:
        history = model.fit(family.task_stream(args.meta_batch_size, seed=seed),
                            steps_per_epoch=1, epochs=iterations, verbose=2).history
    return model, time.perf_counter() - start, history


class EpochSeconds(keras.callbacks.Callback):
    """Wall seconds of each epoch (one meta-iteration when steps_per_epoch=1)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def oracle_returns(family, tasks):
    """Returns `[T]` of the analytic oracle on `Navigation2D` goals `tasks`:
    each step moves by `clip(goal − position, ±max_speed)` (the box
    projection, which minimises the next distance; as the reachable set
    after t steps is the box of half-width t · max_speed, this greedy policy
    minimises every step's distance at once, so its return is the optimum)."""
    goals = np.asarray(tasks, np.float64)
    position = np.zeros_like(goals)
    total = np.zeros(len(goals))
    for _ in range(family.horizon):
        position = position + np.clip(goals - position, -family.max_speed, family.max_speed)
        total -= np.linalg.norm(position - goals, axis=-1)
    return total


def timing(family, meta_batch_size, trajectories, iterations, args):
    """Seconds per meta-iteration and environment steps per second of MAML-RL
    (1 inner step, TRPO) on `family`, the first (tracing) iteration apart."""
    policy = km.rl.mlp_policy(family.observation_dim, family.action_dim, hidden=(100, 100),
                              seed=args.seed)
    model = km.rl.MAMLRL(policy, family, inner_lr=args.inner_lr, inner_steps=1,
                         num_trajectories=trajectories, max_kl=args.max_kl,
                         cg_iterations=args.cg_iterations, seed=args.seed)
    model.compile()
    clock = EpochSeconds()
    model.fit(family.task_stream(meta_batch_size, seed=args.seed), steps_per_epoch=1,
              epochs=iterations, verbose=0, callbacks=[clock])
    steps = meta_batch_size * trajectories * family.horizon * 2  # before and after adaptation
    later = clock.seconds[1:] or clock.seconds
    per_iteration = float(np.mean(later))
    return {"meta_batch_size": meta_batch_size, "trajectories": trajectories,
            "horizon": family.horizon, "iterations": iterations,
            "first_iteration_seconds": clock.seconds[0],
            "seconds_per_iteration": per_iteration,
            "env_steps_per_iteration": steps,
            "env_steps_per_second": steps / per_iteration}


def timing_line(name, measured):
    return (f"timing {name}: {measured['seconds_per_iteration']:.2f} s per meta-iteration "
            f"(meta-batch {measured['meta_batch_size']}, {measured['trajectories']} "
            f"trajectories, horizon {measured['horizon']}; mean of iterations 2-"
            f"{measured['iterations']}, the first, with tracing, took "
            f"{measured['first_iteration_seconds']:.1f} s), "
            f"{measured['env_steps_per_second']:,.0f} environment steps/s")


def summary(returns):
    return [km.stats.mean_confidence_interval(returns[:, k]) for k in range(returns.shape[1])]


def method_result(model, test_tasks, iterations, seconds, history, phases, args):
    """One row's record: returns `[T, 4]` on the test tasks after 0-3 steps, budget."""
    start = time.perf_counter()
    returns = model.adaptation_returns(test_tasks, steps=3, seed=1)
    return {
        "returns": [[float(v) for v in row] for row in returns],
        "mean_ci": summary(returns),
        "meta_iterations": iterations,
        "train_seconds": seconds,
        "seconds_per_iteration": seconds / iterations if iterations else None,
        "train_env_steps": iterations * args.meta_batch_size * args.trajectories
        * model.family.horizon * phases,
        "eval_seconds": time.perf_counter() - start,
        "history": {k: [float(x) for x in v] for k, v in history.items()},
    }


# The settings a results file's rows share: rows are added to a file only
# when these match.
SETTINGS = ("family", "iterations", "meta_batch_size", "trajectories", "inner_lr", "max_kl",
            "cg_iterations", "test_tasks", "seed")
# Trained rows: (inner steps, trained for --iterations?, told the task?, inner
# surrogate). The MAML-RL rows differ in their meta-gradient estimator only.
TRAINED = {"maml_rl": (1, True, False, "dice"), "maml_rl_lvc": (1, True, False, "lvc"),
           "maml_rl_naive": (1, True, False, "naive"), "pretrained": (0, True, False, "dice"),
           "random_init": (0, False, False, "dice"), "oracle_told_task": (0, True, True, "dice")}
METHODS = (*TRAINED, "oracle", "timing")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--family", choices=sorted(FAMILIES), default="navigation_2d")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--meta_batch_size", type=int, default=20)
    parser.add_argument("--trajectories", type=int, default=20)
    parser.add_argument("--inner_lr", type=float, default=0.1)
    parser.add_argument("--max_kl", type=float, default=0.01)
    parser.add_argument("--cg_iterations", type=int, default=10)
    parser.add_argument("--test_tasks", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated rows to run, of " + ", ".join(METHODS) +
                        " (oracle: the analytic one, navigation_2d only; timing: the timing "
                        "line); each replaces its row in --output, other rows are kept")
    parser.add_argument("--timing_iterations", type=int, default=3,
                        help="meta-iterations of the timing run at the paper's meta-batch "
                        "and trajectories")
    parser.add_argument("--output", default=None)
    parser.add_argument("--table", default=None, help="print the README table of this results "
                        "file and exit")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; expected some of {list(METHODS)}")
    if "oracle" in methods and args.family != "navigation_2d":
        methods.remove("oracle")  # no analytic optimum for the simulated cheetah
    results = existing_results(args)
    family = FAMILIES[args.family]()
    test_tasks = family.sample_tasks(args.test_tasks, tf.constant([12345, 0]))
    for name in methods:
        if name in TRAINED:
            inner_steps, trained, told, estimator = TRAINED[name]
            iterations = args.iterations if trained else 0
            model, seconds, history = train(km.rl.TaskInObservation(family) if told else family,
                                            inner_steps, iterations, args.seed, args, estimator)
            results["methods"][name] = method_result(model, test_tasks, iterations, seconds,
                                                     history, inner_steps + 1, args)
        elif name == "oracle":
            oracle = np.repeat(oracle_returns(family, test_tasks)[:, None], 4, axis=1)
            results["methods"]["oracle"] = {
                "returns": oracle.tolist(), "mean_ci": summary(oracle), "meta_iterations": 0,
                "train_seconds": 0.0, "seconds_per_iteration": None, "train_env_steps": 0,
                "eval_seconds": 0.0, "history": {}}
        else:
            meta_batch_size, trajectories = PAPER_SIZES[args.family]
            results.setdefault("timing", {})[args.family] = timing(
                family, meta_batch_size, trajectories, args.timing_iterations, args)
            print(timing_line(args.family, results["timing"][args.family]), flush=True)
        if name in results["methods"]:
            print(name, [f"{m:.1f} ± {h:.1f}" for m, h in results["methods"][name]["mean_ci"]],
                  f"{results['methods'][name]['train_seconds']:.0f} s", flush=True)
        if args.output:  # after every row: a long run keeps what it has measured
            with open(args.output, "w") as f:
                json.dump(results, f, indent=1)


def existing_results(args):
    """The results in `--output` when its settings are this run's (rows are
    added to it), else a new results dict."""
    config = {key: value for key, value in vars(args).items() if key in SETTINGS}
    try:
        with open(args.output) as f:
            results = json.load(f)
    except (TypeError, FileNotFoundError):  # no --output, or a new file
        return {"config": config, "methods": {}}
    stored = {key: results["config"].get(key, "navigation_2d" if key == "family" else None)
              for key in SETTINGS}
    if stored != config:
        raise SystemExit(f"{args.output} holds rows of other settings: {stored}; this run's "
                         f"are {config}. Choose another --output.")
    return results


def table(path):
    """The README's Markdown table of a results file."""
    with open(path) as f:
        results = json.load(f)
    labels = {"maml_rl": "MAML-RL (TRPO outer step, DiCE inner surrogate)",
              "maml_rl_lvc": "MAML-RL (TRPO outer step, ProMP's low-variance LVC surrogate)",
              "maml_rl_naive": "MAML-RL (TRPO outer step, naive surrogate: the paper's biased "
                               "estimator)",
              "pretrained": "pre-trained on all tasks (TRPO), fine-tuned the same way",
              "random_init": "random initialisation",
              "oracle_told_task": "oracle: told the task (trained like the pre-trained policy)",
              "oracle": "oracle (analytic: told the goal, straight to it at full speed)"}
    lines = []
    if results["methods"]:
        lines = ["| policy | 0 steps | 1 step | 2 steps | 3 steps | meta-iterations | "
                 "environment steps | wall time |", "|---|---|---|---|---|---|---|---|"]
    for name in sorted(results["methods"], key=METHODS.index):
        method = results["methods"][name]
        cells = [f"{m:.1f} ± {h:.1f}" for m, h in method["mean_ci"]]
        wall = f"{method['train_seconds']:.0f} s" if method["meta_iterations"] else "—"
        lines.append(f"| {labels[name]} | " + " | ".join(cells) +
                     f" | {method['meta_iterations']} | {method['train_env_steps']:,} | {wall} |")
    paired = paired_lines(results["methods"])
    lines += ["", *paired] if paired else []
    for name, measured in results.get("timing", {}).items():
        lines += [""] if lines else []
        lines.append(timing_line(name, measured))
    return "\n".join(lines)


def paired_lines(methods):
    """Each MAML-RL row's return minus the pre-trained policy's, task by task
    (the same test tasks and sampling seeds): mean ± 95% CI after 0-3 steps."""
    if "pretrained" not in methods:
        return []
    pretrained = np.asarray(methods["pretrained"]["returns"])
    lines = []
    for name in sorted((n for n in methods if n.startswith("maml_rl")), key=METHODS.index):
        difference = np.asarray(methods[name]["returns"]) - pretrained
        cells = ", ".join(f"{m:+.1f} ± {h:.1f}" for m, h in summary(difference))
        lines.append(f"- {name} − pretrained, paired over the test tasks, after 0-3 steps: "
                     f"{cells}")
    return lines


if __name__ == "__main__":
    main()
