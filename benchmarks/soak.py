"""Soak test: a long MAML run on sinusoids must hold its memory and never re-trace.

MAML as in the paper's sinusoid experiment (40-40 ReLU MLP, K=10 support and
10 query points, meta-batch 25, inner lr 0.01, one inner step, second order,
Adam 1e-3), trained with `fit` on the seeded sinusoid stream. Every
`--sample_every` meta-iterations it records the process's resident memory
(RSS) and how many times the train step has been traced. Prints one line per
sample and the RSS growth from the first sample to the last; exits with
status 1 if the train step was traced again after the first meta-iteration.

    python benchmarks/soak.py                  # 10,000 iterations, a sample every 1,000
    python benchmarks/soak.py --iterations=2000 --sample_every=200 --json=soak.json
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import psutil  # noqa: E402

import keras_meta as km  # noqa: E402

MIB = 2 ** 20


class Sampler(keras.callbacks.Callback):
    """Records `(meta-iteration, RSS bytes, traces, seconds)` after the first
    step and at every epoch end; `traces` is a one-element list the traced
    train step increments."""

    def __init__(self, traces):
        super().__init__()
        self.traces = traces
        self.samples = []
        self.process = psutil.Process()
        self.start = time.perf_counter()

    def sample(self):
        self.samples.append((int(self.model.optimizer.iterations), self.process.memory_info().rss,
                             self.traces[0], time.perf_counter() - self.start))

    def on_train_batch_end(self, batch, logs=None):
        if not self.samples:
            self.sample()

    def on_epoch_end(self, epoch, logs=None):
        self.sample()


def soak(iterations=10_000, sample_every=1_000, meta_batch_size=25, seed=0):
    """Meta-trains MAML for `iterations` meta-iterations; returns the samples
    `[(meta-iteration, RSS bytes, traces of the train step, seconds)]`, the
    first taken after meta-iteration 1, then one every `sample_every`."""
    if iterations % sample_every:
        raise ValueError(f"`iterations` ({iterations}) must be a multiple of `sample_every` "
                         f"({sample_every}).")
    keras.utils.set_random_seed(seed)
    model = km.MAML(km.learners.mlp(hidden=(40, 40)), inner_lr=0.01, inner_steps=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    traces = [0]
    train_step = model.train_step

    def counted_train_step(data):  # Python runs it only while tracing
        traces[0] += 1
        return train_step(data)

    model.train_step = counted_train_step
    sampler = Sampler(traces)
    stream = km.data.sinusoid_episodes(shots=10, query_shots=10,
                                       meta_batch_size=meta_batch_size, seed=seed)
    model.fit(stream, steps_per_epoch=sample_every, epochs=iterations // sample_every,
              verbose=0, callbacks=[sampler])
    return sampler.samples


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--sample_every", type=int, default=1_000)
    parser.add_argument("--meta_batch_size", type=int, default=25)
    parser.add_argument("--json", help="also write the samples to this file")
    args = parser.parse_args(argv)
    samples = soak(args.iterations, args.sample_every, args.meta_batch_size)
    print(f"{'iteration':>9} {'RSS MiB':>8} {'traces':>6} {'seconds':>8}")
    for iteration, rss, traces, seconds in samples:
        print(f"{iteration:>9} {rss / MIB:>8.1f} {traces:>6} {seconds:>8.1f}")
    first, last = samples[1], samples[-1]  # from the first full sample on
    growth = (last[1] - first[1]) / MIB
    retraces = last[2] - samples[0][2]
    print(f"RSS growth from meta-iteration {first[0]} to {last[0]}: {growth:+.1f} MiB; "
          f"re-traces after the first meta-iteration: {retraces}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"samples": samples, "rss_growth_mib": growth, "retraces": retraces},
                      file, indent=1)
    return 1 if retraces else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
