"""Settings of `python -m keras_meta.train`: defaults per dataset, and
presets reproducing the published protocols.

A preset fixes the protocol values it lists; `iterations` is the paper's
budget and stays overridable. Values (MAML paper, Finn et al. 2017):
Omniglot 5-way: inner lr 0.4, 1 inner step (3 at test), meta-batch 32;
20-way: inner lr 0.1, 5 steps, meta-batch 16; Adam 1e-3; 60,000
iterations; 15 query examples per class. Sinusoid: K = 10, inner lr 0.01,
one step, meta-batch 25, 70,000 iterations. mini-ImageNet (MAML paper):
conv4 with 32 filters, 84×84, inner lr 0.01, 5 inner steps (10 at test),
meta-batch 4 for 1-shot and 2 for 5-shot, 15 query examples per class, Adam
1e-3, 60,000 iterations.
"""

# The few-shot image benchmarks (`km.data.benchmark_episodes`).
BENCHMARKS = ("mini_imagenet", "tiered_imagenet", "cifar_fs", "fc100", "cub")
DATASETS = ("omniglot_minimal", "omniglot", "sinusoid", *BENCHMARKS)

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
DATASET_DEFAULTS = {
    **{name: _BENCHMARK_DEFAULTS for name in BENCHMARKS},
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


PRESETS = {
    **{f"{algorithm}_omniglot_{ways}w{shots}s": _omniglot(ways, shots, algorithm)
       for algorithm in ("maml", "fomaml") for ways in (5, 20) for shots in (1, 5)},
    **{f"maml_mini_imagenet_5w{shots}s": _maml_mini_imagenet(shots) for shots in (1, 5)},
    "maml_sinusoid": dict(
        algorithm="maml", dataset="sinusoid", shots=10, query_shots=10, meta_batch_size=25,
        inner_lr=0.01, inner_steps=1, eval_inner_steps=10, first_order=False,
        learning_rate=1e-3, iterations=70000,
    ),
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
    kind = "sinusoid" if dataset == "sinusoid" else "omniglot"
    return {**DATASET_DEFAULTS[dataset], **ALGORITHM_DEFAULTS.get((algorithm, kind), {})}


# Preset values a command line may change without conflicting with the preset.
OVERRIDABLE = ("iterations",)
