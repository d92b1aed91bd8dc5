"""The two jobs of the PyTorch comparisons (`benchmarks/accuracy_parity.py`,
`benchmarks/time_to_accuracy.py`), built the same way in keras_meta and in a
plain PyTorch per-task loop: their settings, episode streams, models, one
PyTorch meta-iteration and the PyTorch test.

- `maml`: the README's main job, `python -m keras_meta.train`'s defaults:
  second-order MAML, conv4 (64 filters, batch norm), Omniglot minimal 5-way
  1-shot, 5 queries per class, 4 tasks per meta-iteration, inner lr 0.4,
  1 inner step (3 at test), Adam 1e-3 (ε 1e-8 on both sides).
- `protonet`: `python -m keras_meta.train --algorithm=protonet`'s defaults:
  the same episodes, conv4 embedding, squared Euclidean distance.

Each side builds its network with its own framework's standard
initialisation: keras_meta's `km.learners` (see their docstrings), PyTorch's
`nn.Conv2d`, `nn.Linear` and `nn.BatchNorm2d` defaults. torch is imported
inside the functions that need it (an optional dependency).
"""

import json
import os
import subprocess
import sys

# TensorFlow's oneDNN kernels on any CPU, as `import keras_meta` asks for, even
# where a cell imports keras first (this module is imported before either).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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


def keras_model(job, seed, initial_weights="keras_meta"):
    """The compiled keras_meta model of `job`, its weights drawn from `seed`
    (or copied from the PyTorch network's with `initial_weights="pytorch"`)."""
    import keras

    import keras_meta as km
    from keras_meta.cli.models import outer_optimizer

    keras.utils.set_random_seed(seed)
    if job == "maml":
        model = km.MAML(km.learners.conv4(WAYS), inner_lr=INNER_LR, inner_steps=INNER_STEPS,
                        eval_inner_steps=TEST_INNER_STEPS)
    else:
        model = km.ProtoNet(km.learners.conv4_embedding())
    if initial_weights == "pytorch":
        model.learner.set_weights(torch_initial_weights(job, seed))
    model.compile(optimizer=outer_optimizer(LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


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


def torch_model(job, seed):
    """`(net, params, optimizer)`: the PyTorch network of `job` with its
    default initialisation drawn from `seed`, its parameters by name, Adam."""
    import torch

    torch.manual_seed(seed)
    net = torch_conv4(WAYS if job == "maml" else None)
    return net, dict(net.named_parameters()), torch.optim.Adam(net.parameters(), LEARNING_RATE)


def torch_train_step(job, net, params, optimizer, batch):
    """One meta-iteration on `batch` (see `torch_batches`): each task's graph
    in turn, gradients accumulated, then one Adam step."""
    import torch
    from torch.func import functional_call

    net.train()
    optimizer.zero_grad()
    for support_x, support_y, query_x, query_y in zip(*batch):
        if job == "protonet":
            logits = torch_protonet_logits(net, support_x, support_y, query_x)
        else:
            fast = torch_maml_adapt(net, params, support_x, support_y, INNER_STEPS, True)
            logits = functional_call(net, fast, (query_x,))
        (torch.nn.functional.cross_entropy(logits, query_y) / META_BATCH).backward()
    optimizer.step()


def torch_accuracies(job, net, params, dataset, num_tasks):
    """Query accuracy `[num_tasks]` of each of the first `num_tasks` tasks of `dataset`."""
    import numpy as np
    import torch
    from torch.func import functional_call

    accuracies = []
    if job == "protonet":
        net.eval()  # moving batch-norm statistics, as keras_meta's ProtoNet outside fit
    for batch in torch_batches(dataset.take(-(-num_tasks // TEST_BATCH))):
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
    net.train()
    return np.asarray(accuracies[:num_tasks])


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def compare(jobs, seeds, implementations, measure, row, header, results=None):
    """Runs `measure(job, implementation, seed)` for every job, seed and
    implementation (the implementations alternating, so that both see the
    same load on the machine), prints each result to stderr and then the
    Markdown table of `header` (its columns after the seeds' ones) and of
    `row(job, implementation, runs)`; writes every result to `results` if
    given. torch missing: the PyTorch column is left out, saying so."""
    available = [i for i in implementations if i != "pytorch" or torch_available()]
    if len(available) < len(implementations):
        print("torch is not installed: the PyTorch column is left out "
              "(pip install torch to include it).")
    seeds = [int(s) for s in seeds]
    columns = [header[0], "implementation", *(f"seed {s}" for s in seeds), *header[1:]]
    print("| " + " | ".join(columns) + " |")
    print("| --- " * len(columns) + "|")
    everything = []
    for job in jobs:
        runs = {implementation: [] for implementation in available}
        for seed in seeds:
            for implementation in available:
                runs[implementation].append(measure(job, implementation, seed))
                print(json.dumps(runs[implementation][-1]), file=sys.stderr, flush=True)
        for implementation in available:
            everything += runs[implementation]
            print(row(job, implementation, runs[implementation]), flush=True)
    if results:
        with open(results, "w") as file:
            json.dump(everything, file, indent=1)


def run_cell_process(module, cell, flags):
    """Runs `python -m <module> --cell=<cell> <flags>` from the repository root
    → the JSON dict its last output line holds, or `{"error": ...}` naming
    its last line of stderr."""
    result = subprocess.run([sys.executable, "-m", module, f"--cell={cell}", *flags],
                            capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["no output"])[-1][:80]}
    return json.loads(result.stdout.strip().splitlines()[-1])
