"""Settings of `python -m keras_meta.train`: defaults per dataset, and
presets reproducing the published protocols.

A preset fixes the protocol values it lists; `iterations` is the paper's
budget and stays overridable, as do `time_budget` (the one-shot presets'
wall time of training) and `within_alphabet_trials` (their evaluation). Values (MAML paper, Finn et al. 2017):
Omniglot 5-way: inner lr 0.4, 1 inner step (3 at test), meta-batch 32;
20-way: inner lr 0.1, 5 steps, meta-batch 16; Adam 1e-3; 60,000
iterations; 15 query examples per class. Sinusoid: K = 10, inner lr 0.01,
one step, meta-batch 25, 70,000 iterations. mini-ImageNet (MAML paper):
conv4 with 32 filters, 84×84, inner lr 0.01, 5 inner steps (10 at test),
meta-batch 4 for 1-shot and 2 for 5-shot, 15 query examples per class, Adam
1e-3, 60,000 iterations. Meta-RL (MAML paper, section 5.3 and appendix A.2):
policy 2×100 ReLU, inner lr 0.1, one inner step, 20 trajectories per task and
step, TRPO outer step with max KL 0.01; 2-D navigation: meta-batch 20,
horizon 100, 100 meta-iterations; half-cheetah velocity and direction:
meta-batch 40, horizon 200, 500 meta-iterations (the paper's "up to 500").
"""

# The few-shot image benchmarks (`km.data.benchmark_episodes`).
BENCHMARKS = ("mini_imagenet", "tiered_imagenet", "cifar_fs", "fc100", "cub")
# The meta-reinforcement-learning task families (`keras_meta.rl`).
RL_DATASETS = ("navigation_2d", "half_cheetah_vel", "half_cheetah_dir")
DATASETS = ("omniglot_minimal", "omniglot", "sinusoid", *BENCHMARKS, *RL_DATASETS)

# Without a preset: a short run that finishes in minutes on a laptop CPU.
_OMNIGLOT_DEFAULTS = dict(
    algorithm="maml", ways=5, shots=1, query_shots=5, meta_batch_size=4, inner_lr=0.4,
    inner_steps=1, eval_inner_steps=3, first_order=False, learning_rate=1e-3, iterations=600,
)
# The benchmarks without a preset: a short run with MAML's mini-ImageNet inner loop.
_BENCHMARK_DEFAULTS = dict(
    algorithm="maml", ways=5, shots=1, query_shots=5, meta_batch_size=4, inner_lr=0.01,
    inner_steps=5, eval_inner_steps=10, first_order=False, learning_rate=1e-3, iterations=600,
)
# Meta-RL without a preset: the paper's inner loop on a short run (the
# cheetahs, which simulate in Python, with a smaller meta-batch and fewer
# trajectories). Tested after 0..3 steps.
_RL_DEFAULTS = dict(algorithm="maml", inner_lr=0.1, inner_steps=1, eval_inner_steps=3,
                    first_order=False, max_kl=0.01, estimator="dice")
_CHEETAH_DEFAULTS = dict(**_RL_DEFAULTS, meta_batch_size=10, trajectories=10, horizon=200,
                         iterations=10)
DATASET_DEFAULTS = {
    **{name: _BENCHMARK_DEFAULTS for name in BENCHMARKS},
    "navigation_2d": dict(**_RL_DEFAULTS, meta_batch_size=20, trajectories=20, horizon=100,
                          iterations=20),
    "half_cheetah_vel": _CHEETAH_DEFAULTS,
    "half_cheetah_dir": _CHEETAH_DEFAULTS,
    "omniglot_minimal": _OMNIGLOT_DEFAULTS,
    "omniglot": _OMNIGLOT_DEFAULTS,
    "sinusoid": dict(
        algorithm="maml", shots=10, query_shots=10, meta_batch_size=25, inner_lr=0.01,
        inner_steps=1, eval_inner_steps=10, first_order=False, learning_rate=1e-3,
        iterations=2000,
    ),
}


def _omniglot(ways, shots, algorithm="maml"):
    if ways == 5:
        loop = dict(meta_batch_size=32, inner_lr=0.4, inner_steps=1, eval_inner_steps=3)
    else:
        loop = dict(meta_batch_size=16, inner_lr=0.1, inner_steps=5, eval_inner_steps=5)
    return dict(algorithm=algorithm, dataset="omniglot", ways=ways, shots=shots, query_shots=15,
                first_order=algorithm == "fomaml", learning_rate=1e-3, iterations=60000, **loop)


def _maml_mini_imagenet(shots):
    return dict(algorithm="maml", dataset="mini_imagenet", ways=5, shots=shots, query_shots=15,
                meta_batch_size=4 if shots == 1 else 2, inner_lr=0.01, inner_steps=5,
                eval_inner_steps=10, first_order=False, learning_rate=1e-3, iterations=60000,
                filters=32)


def _maml_rl(dataset, meta_batch_size, horizon, iterations):
    return dict(algorithm="maml", dataset=dataset, meta_batch_size=meta_batch_size,
                trajectories=20, horizon=horizon, inner_lr=0.1, inner_steps=1,
                eval_inner_steps=3, first_order=False, max_kl=0.01, iterations=iterations)


def _protonet_mini_imagenet(shots):
    # Snell et al.: 30-way training episodes for 1-shot, 20-way for 5-shot, 15 queries per
    # class, one episode per step, Adam 1e-3 (they halve it every 2,000 episodes and stop
    # on the validation loss; this CLI keeps it constant for a fixed budget).
    return dict(algorithm="protonet", dataset="mini_imagenet", ways=5, shots=shots,
                train_ways=30 if shots == 1 else 20, query_shots=15, meta_batch_size=1,
                learning_rate=1e-3, iterations=20000)


def _omniglot_minimal_one_shot(seconds):
    # The strongest measured recipe for Lake et al.'s 20-way within-alphabet one-shot trials
    # (README, "Omniglot minimal, within-alphabet one-shot trials"): ProtoNet on 20-way 1-shot
    # training episodes within one alphabet, meta-batch 2, 2 queries per class, characters()
    # distortions, 3 refinement steps at test; trained for `seconds` of wall time (the
    # iterations are a maximum), no validation (it would spend the budget).
    return dict(algorithm="protonet", dataset="omniglot_minimal", ways=20, shots=1,
                query_shots=2, meta_batch_size=2, learning_rate=1e-3, iterations=1_000_000,
                train_within_alphabet=True, augment="characters", eval_refinement_steps=3,
                within_alphabet_trials=1000, time_budget=seconds, val_tasks=0,
                export_raw_images=True)


PRESETS = {
    **{f"{algorithm}_omniglot_{ways}w{shots}s": _omniglot(ways, shots, algorithm)
       for algorithm in ("maml", "fomaml") for ways in (5, 20) for shots in (1, 5)},
    **{f"maml_mini_imagenet_5w{shots}s": _maml_mini_imagenet(shots) for shots in (1, 5)},
    **{f"protonet_mini_imagenet_5w{shots}s": _protonet_mini_imagenet(shots) for shots in (1, 5)},
    **{f"protonet_resnet12_mini_imagenet_5w{shots}s":
       dict(_protonet_mini_imagenet(shots), backbone="resnet12") for shots in (1, 5)},
    "maml_sinusoid": dict(
        algorithm="maml", dataset="sinusoid", shots=10, query_shots=10, meta_batch_size=25,
        inner_lr=0.01, inner_steps=1, eval_inner_steps=10, first_order=False,
        learning_rate=1e-3, iterations=70000,
    ),
    "omniglot_minimal_one_shot": _omniglot_minimal_one_shot(600),
    "omniglot_minimal_one_shot_60min": _omniglot_minimal_one_shot(3600),
    "maml_navigation_2d": _maml_rl("navigation_2d", 20, 100, 100),
    "maml_half_cheetah_vel": _maml_rl("half_cheetah_vel", 40, 200, 500),
    "maml_half_cheetah_dir": _maml_rl("half_cheetah_dir", 40, 200, 500),
}

# Per algorithm and dataset kind, what replaces the dataset's defaults: the
# fine-tuning baseline fits each Omniglot task's head with 100 SGD steps of
# lr 0.1 (Chen et al.); LEO and MetaLSTM take 5 inner steps.
ALGORITHM_DEFAULTS = {
    ("finetune", "omniglot"): dict(inner_lr=0.1, eval_inner_steps=100),
    ("leo", "omniglot"): dict(inner_steps=5),
    ("meta_lstm", "omniglot"): dict(inner_steps=5),
}


def defaults(dataset, algorithm):
    """The defaults of `algorithm` on `dataset` (one of `DATASETS`)."""
    kind = ("rl" if dataset in RL_DATASETS else "sinusoid" if dataset == "sinusoid"
            else "omniglot")
    return {**DATASET_DEFAULTS[dataset], **ALGORITHM_DEFAULTS.get((algorithm, kind), {})}


# Per meta-RL dataset: validation and test tasks when --val_tasks and
# --test_tasks are not given (the cheetahs simulate in Python: each task is
# 4 × trajectories × horizon environment steps).
RL_EVAL_TASKS = {"navigation_2d": dict(val_tasks=20, test_tasks=40),
                 "half_cheetah_vel": dict(val_tasks=0, test_tasks=40),
                 "half_cheetah_dir": dict(val_tasks=0, test_tasks=40)}

# Preset values a command line may change without conflicting with the preset.
OVERRIDABLE = ("iterations", "time_budget", "within_alphabet_trials")
