"""The runs behind each results table: the `python -m keras_meta.train` flags
of each, its iteration budget and seed.

Sinusoid (MAML paper protocol): 40-40 MLP, K = 10 in training, meta-batch
25, inner lr 0.01, one inner step (Reptile: 5, as it needs several), 10 at
test, tested with K = 5, 10 and 20 on 600 new tasks. Meta-SGD is tested
after its one learned step only, as in its paper: its per-parameter step
sizes are learned for one step, and ten of them diverged (measured after
1,000 iterations).

Omniglot minimal: conv4 (64 filters; SNAIL, LEO, MetaLSTM 32 with Adam 3e-3
as in `examples/omniglot_model_based_short_runs.sh`), 5 query examples per
class, meta-batch 4 (20-way: 2), inner lr 0.4, 1 inner step, 3 at test
(Reptile 3 steps of 0.2; MAML++ 2 steps), 600 test tasks. The budgets keep
the whole table to a few CPU-hours on 2 cores.
"""

import dataclasses

SINUSOID_ALGORITHMS = ("maml", "fomaml", "reptile", "meta_sgd", "finetune")
SINUSOID_ITERATIONS = 70000  # the MAML paper's
SINUSOID_SHOTS = (5, 10, 20)
SINUSOID_STEPS = (1, 5, 10)

OMNIGLOT_ALGORITHMS = ("maml", "fomaml", "reptile", "meta_sgd", "anil", "maml_plus_plus",
                       "protonet", "matching", "relation", "snail", "leo", "meta_lstm",
                       "finetune")
OMNIGLOT_SETTINGS = {"5w1s": dict(ways=5, shots=1), "5w5s": dict(ways=5, shots=5),
                     "20w1s": dict(ways=20, shots=1)}
# Meta-iterations (finetune: pre-training batches) of each algorithm per setting.
OMNIGLOT_BUDGETS = {
    "maml": (1000, 600, 600), "fomaml": (1000, 600, 600), "reptile": (1000, 600, 600),
    "meta_sgd": (1000, 600, 600), "anil": (1000, 600, 600), "maml_plus_plus": (600, 400, 400),
    "protonet": (1000, 1000, 1000), "matching": (1000, 1000, 1000),
    "relation": (600, 400, 400), "snail": (2000, 1000, 1000), "leo": (1000, 600, 600),
    "meta_lstm": (600, 400, 400), "finetune": (1000, 1000, 1000),
}
SEEDS = (0, 1, 2)  # MAML 5-way 1-shot
TEST_TASKS = 600
_OMNIGLOT_EXTRA = {
    "reptile": dict(inner_steps=3, inner_lr=0.2),
    "maml_plus_plus": dict(inner_steps=2, eval_inner_steps=2),
    "snail": dict(filters=32, learning_rate=3e-3),
    "leo": dict(filters=32, learning_rate=3e-3, global_clipnorm=1.0),
    "meta_lstm": dict(filters=32, learning_rate=3e-3),
}
# --smoke: what replaces the budget and the test.
SMOKE = dict(iterations=4, log_every=2, test_tasks=10, filters=4)


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: where its results go and the CLI flags it takes."""

    table: str
    algorithm: str
    setting: str
    seed: int
    flags: dict

    @property
    def name(self):
        return f"{self.algorithm}_{self.setting}_seed{self.seed}"

    def arguments(self, smoke=False):
        """The command-line flags, `--name=value` (booleans `--name` / `--noname`)."""
        values = {**self.flags, **(SMOKE if smoke else {})}
        return [(f"--{name}" if value else f"--no{name}") if isinstance(value, bool)
                else f"--{name}={value}" for name, value in values.items()]


def sinusoid_runs(iterations=SINUSOID_ITERATIONS):
    """The sinusoid table's runs, `iterations` meta-iterations each."""
    runs = []
    for algorithm in SINUSOID_ALGORITHMS:
        flags = dict(dataset="sinusoid", algorithm=algorithm, shots=10, query_shots=10,
                     meta_batch_size=25, inner_lr=0.01, eval_inner_steps=max(SINUSOID_STEPS),
                     test_shots=",".join(str(k) for k in SINUSOID_SHOTS if k != 10))
        if algorithm != "finetune":
            flags["inner_steps"] = 5 if algorithm == "reptile" else 1
        if algorithm == "meta_sgd":
            flags["eval_inner_steps"] = 1
        runs.append(Run("sinusoid", algorithm, "k10", 0, {**flags, **_common(iterations, 0)}))
    return runs


def omniglot_runs():
    """The Omniglot table's runs: every algorithm and setting at seed 0, and
    MAML 5-way 1-shot at each of `SEEDS`."""
    runs = []
    for algorithm in OMNIGLOT_ALGORITHMS:
        for (setting, shape), iterations in zip(OMNIGLOT_SETTINGS.items(),
                                                OMNIGLOT_BUDGETS[algorithm]):
            seeds = SEEDS if (algorithm, setting) == ("maml", "5w1s") else (0,)
            for seed in seeds:
                flags = dict(dataset="omniglot_minimal", algorithm=algorithm, **shape,
                             query_shots=5, meta_batch_size=4 if shape["ways"] == 5 else 2,
                             **_OMNIGLOT_EXTRA.get(algorithm, {}), **_common(iterations, seed))
                runs.append(Run("omniglot", algorithm, setting, seed, flags))
    return runs


def _common(iterations, seed):
    return dict(iterations=iterations, seed=seed, test_tasks=TEST_TASKS, val_tasks=0,
                export=False, verbose=2)
