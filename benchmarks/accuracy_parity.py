"""Learns keras_meta as much as a plain PyTorch loop at the same budget?

Runs two jobs side by side in keras_meta and in a plain PyTorch per-task
loop (optional: the PyTorch column is left out when torch is not
installed), over several weight seeds, and prints each run's test accuracy
(mean ± 95% CI over the test tasks), the mean over seeds and the training
time:

- `maml`: the README's main job, `python -m keras_meta.train`'s defaults:
  second-order MAML, conv4 (64 filters, batch norm), Omniglot minimal 5-way
  1-shot, 5 queries per class, 4 tasks per meta-iteration, inner lr 0.4,
  1 inner step (3 at test), Adam 1e-3 (ε 1e-8 on both sides), `--iterations`
  meta-iterations.
- `protonet`: `python -m keras_meta.train --algorithm=protonet`'s defaults:
  the same episodes, conv4 embedding, squared Euclidean distance.

Both sides read the same episodes from `km.data.omniglot_episodes` (train
seed 0, test seed 1; the PyTorch loop converts each batch to tensors);
only the initial weights' seed changes between runs. For each seed the
implementations run one after the other, so that both see the same load on
the machine. Each side builds its
network with its own framework's standard initialisation: keras_meta's
`km.learners` (see their docstrings), PyTorch's `nn.Conv2d`, `nn.Linear`
and `nn.BatchNorm2d` defaults. Training time is the meta-training loop
alone (`fit`, the PyTorch loop) with its tracing, without the test. Every
run is a process of its own.

    python benchmarks/accuracy_parity.py                          # both jobs, seeds 0-2
    python benchmarks/accuracy_parity.py --jobs=maml --seeds=0,1,2,3,4
    python benchmarks/accuracy_parity.py --keras_initial_weights=pytorch  # paired
"""

import json
import os
import subprocess
import sys
import time

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS
flags.DEFINE_list("jobs", ["maml", "protonet"], "Jobs to run: maml, protonet.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Weight seeds, one run each per implementation.")
flags.DEFINE_list("implementations", ["keras_meta", "pytorch"], "keras_meta and/or pytorch.")
flags.DEFINE_integer("iterations", 600, "Meta-iterations of each run.")
flags.DEFINE_integer("test_tasks", 600, "Test tasks of each run.")
flags.DEFINE_enum("keras_initial_weights", "keras_meta", ["keras_meta", "pytorch"],
                  "keras_meta's starting point: its learners' own initialisation, or a "
                  "copy of the PyTorch network's initial weights of the same seed (a "
                  "paired comparison of the training steps alone).")
flags.DEFINE_string("results", None, "Also write every run's result to this JSON file.")
flags.DEFINE_string("cell", None, "Internal: run one cell, as 'job:implementation:seed'.")

WAYS, SHOTS, QUERY_SHOTS, META_BATCH = 5, 1, 5, 4
INNER_LR, INNER_STEPS, TEST_INNER_STEPS = 0.4, 1, 3
LEARNING_RATE = 1e-3
TRAIN_SEED, TEST_SEED = 0, 1
TEST_BATCH = 20


def streams():
    """`(train, test)` episode datasets of the job (see the module docstring)."""
    import keras_meta as km

    common = dict(ways=WAYS, shots=SHOTS, query_shots=QUERY_SHOTS)
    return (km.data.omniglot_episodes("train", meta_batch_size=META_BATCH, seed=TRAIN_SEED,
                                      **common),
            km.data.omniglot_episodes("test", meta_batch_size=TEST_BATCH, seed=TEST_SEED,
                                      **common))


def keras_run(job, seed):
    """Meta-trains and tests the keras_meta model of `job` → `(accuracies [N], seconds)`."""
    import keras

    import keras_meta as km
    from keras_meta.cli.models import outer_optimizer

    train, test = streams()
    keras.utils.set_random_seed(seed)
    if job == "maml":
        model = km.MAML(km.learners.conv4(WAYS), inner_lr=INNER_LR, inner_steps=INNER_STEPS,
                        eval_inner_steps=TEST_INNER_STEPS)
    else:
        model = km.ProtoNet(km.learners.conv4_embedding())
    if FLAGS.keras_initial_weights == "pytorch":
        model.learner.set_weights(torch_initial_weights(job, seed))
    model.compile(optimizer=outer_optimizer(LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    model.fit(train, steps_per_epoch=FLAGS.iterations, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    results = km.evaluation.evaluate_tasks(model, test, FLAGS.test_tasks)
    return results.accuracy, seconds


def torch_conv4(outputs):
    """conv4 in PyTorch with its default initialisation: `[N, 1, 28, 28]` →
    `[N, outputs]` logits, or `[N, 64]` features when `outputs` is None."""
    from torch import nn

    layers = []
    for in_channels in (1, 64, 64, 64):
        layers += [nn.Conv2d(in_channels, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                   nn.MaxPool2d(2)]
    layers.append(nn.Flatten())
    if outputs is not None:
        layers.append(nn.Linear(64, outputs))
    return nn.Sequential(*layers)


def torch_initial_weights(job, seed):
    """The PyTorch network's initial weights for `seed`, in the order and
    layout of keras_meta's conv4 (`get_weights()`): kernels `[h, w, in, out]`
    and `[in, out]`, then batch norm's scale, offset, mean and variance."""
    import torch

    torch.manual_seed(seed)
    net = torch_conv4(WAYS if job == "maml" else None)
    weights = []
    for layer in net:
        if isinstance(layer, torch.nn.Conv2d):
            weights += [layer.weight.detach().permute(2, 3, 1, 0), layer.bias.detach()]
        elif isinstance(layer, torch.nn.Linear):
            weights += [layer.weight.detach().T, layer.bias.detach()]
        elif isinstance(layer, torch.nn.BatchNorm2d):
            weights += [layer.weight.detach(), layer.bias.detach(), layer.running_mean,
                        layer.running_var]
    return [w.numpy().copy() for w in weights]


def torch_batches(dataset):
    """`(support_x, support_y, query_x, query_y)` torch tensors per episode
    batch, images channels-first: `[T, S, 1, 28, 28]`, `[T, S]`, ...."""
    import torch

    for inputs, query_y in dataset.as_numpy_iterator():
        yield (torch.from_numpy(inputs["support_x"]).permute(0, 1, 4, 2, 3),
               torch.from_numpy(inputs["support_y"]).long(),
               torch.from_numpy(inputs["query_x"]).permute(0, 1, 4, 2, 3),
               torch.from_numpy(query_y).long())


def torch_maml_adapt(net, params, x, y, steps, create_graph):
    """`steps` SGD steps of `INNER_LR` on one task's support set → fast weights."""
    import torch
    from torch.func import functional_call

    fast = params
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(functional_call(net, fast, (x,)), y)
        grads = torch.autograd.grad(loss, list(fast.values()), create_graph=create_graph)
        fast = {name: w - INNER_LR * g for (name, w), g in zip(fast.items(), grads)}
    return fast


def torch_protonet_logits(net, support_x, support_y, query_x):
    """Negative squared Euclidean distances of one task's queries to its
    class-mean prototypes, `[Q, ways]`; support and query embedded together."""
    import torch

    features = net(torch.cat([support_x, query_x]))
    support, query = features[:len(support_x)], features[len(support_x):]
    prototypes = torch.stack([support[support_y == k].mean(0) for k in range(WAYS)])
    return -torch.cdist(query, prototypes) ** 2


def torch_run(job, seed):
    """The same job as a plain PyTorch per-task loop → `(accuracies [N], seconds)`."""
    import numpy as np
    import torch
    from torch.func import functional_call

    train, test = streams()
    torch.manual_seed(seed)
    net = torch_conv4(WAYS if job == "maml" else None)
    params = dict(net.named_parameters())
    optimizer = torch.optim.Adam(net.parameters(), LEARNING_RATE)
    loss_fn = torch.nn.functional.cross_entropy

    def task_loss(support_x, support_y, query_x, query_y):
        if job == "protonet":
            return loss_fn(torch_protonet_logits(net, support_x, support_y, query_x), query_y)
        fast = torch_maml_adapt(net, params, support_x, support_y, INNER_STEPS, True)
        return loss_fn(functional_call(net, fast, (query_x,)), query_y)

    start = time.perf_counter()
    net.train()
    for batch in torch_batches(train.take(FLAGS.iterations)):
        optimizer.zero_grad()
        for task in zip(*batch):  # one task's graph at a time, gradients accumulated
            (task_loss(*task) / META_BATCH).backward()
        optimizer.step()
    seconds = time.perf_counter() - start

    accuracies = []
    if job == "protonet":
        net.eval()  # moving batch-norm statistics, as keras_meta's ProtoNet outside fit
    for batch in torch_batches(test.take(-(-FLAGS.test_tasks // TEST_BATCH))):
        for support_x, support_y, query_x, query_y in zip(*batch):
            if job == "protonet":
                with torch.no_grad():
                    logits = torch_protonet_logits(net, support_x, support_y, query_x)
            else:  # batch norm on the batch it sees (transductive), as keras_meta's MAML
                fast = torch_maml_adapt(net, params, support_x, support_y, TEST_INNER_STEPS,
                                        False)
                with torch.no_grad():
                    logits = functional_call(net, fast, (query_x,))
            accuracies.append((logits.argmax(-1) == query_y).float().mean().item())
    return np.asarray(accuracies[:FLAGS.test_tasks]), seconds


def run_cell(cell):
    job, implementation, seed = cell.split(":")
    run = keras_run if implementation == "keras_meta" else torch_run
    accuracies, seconds = run(job, int(seed))
    import keras_meta as km

    mean, ci = km.stats.mean_confidence_interval(accuracies)
    print(json.dumps({"job": job, "implementation": implementation, "seed": int(seed),
                      "accuracy": mean, "ci": ci, "seconds": seconds}))


def measure(job, implementation, seed):
    """One run in a process of its own → its result dict (or `{"error": ...}`)."""
    result = subprocess.run(
        [sys.executable, __file__, f"--cell={job}:{implementation}:{seed}",
         f"--iterations={FLAGS.iterations}", f"--test_tasks={FLAGS.test_tasks}",
         f"--keras_initial_weights={FLAGS.keras_initial_weights}"],
        capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["no output"])[-1][:80]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def row(job, implementation, runs):
    cells = [f"{r['accuracy']:.2%} ± {r['ci']:.2%}" if "error" not in r
             else f"failed: {r['error']}" for r in runs]
    done = [r for r in runs if "error" not in r]
    mean = (f"**{sum(r['accuracy'] for r in done) / len(done):.2%}**" if done else "—")
    times = (f"{min(r['seconds'] for r in done):.0f}–{max(r['seconds'] for r in done):.0f} s"
             if done else "—")
    return f"| {job} | {implementation} | " + " | ".join(cells) + f" | {mean} | {times} |"


def main(argv):
    del argv
    if FLAGS.cell:
        run_cell(FLAGS.cell)
        return
    implementations = [i for i in FLAGS.implementations
                       if i != "pytorch" or torch_available()]
    if len(implementations) < len(FLAGS.implementations):
        print("torch is not installed: the PyTorch column is left out "
              "(pip install torch to include it).")
    seeds = [int(s) for s in FLAGS.seeds]
    print(f"Test accuracy on {FLAGS.test_tasks} tasks (test seed {TEST_SEED}) after "
          f"{FLAGS.iterations} meta-iterations (train seed {TRAIN_SEED}), per weight seed; "
          "training time of the fastest and slowest run:\n")
    print("| job | implementation | " + " | ".join(f"seed {s}" for s in seeds)
          + " | mean | training time |")
    print("| --- " * (len(seeds) + 4) + "|")
    everything = []
    for job in FLAGS.jobs:
        runs = {implementation: [] for implementation in implementations}
        for seed in seeds:  # implementations alternate, so both see the same machine load
            for implementation in implementations:
                runs[implementation].append(measure(job, implementation, seed))
                print(json.dumps(runs[implementation][-1]), file=sys.stderr, flush=True)
        for implementation in implementations:
            everything += runs[implementation]
            print(row(job, implementation, runs[implementation]), flush=True)
    if FLAGS.results:
        with open(FLAGS.results, "w") as file:
            json.dump(everything, file, indent=1)


if __name__ == "__main__":
    app.run(main)
