"""Times one meta-iteration: keras_meta's default path, its whole-batch
reference path, and a PyTorch `torch.func` per-task loop (optional).

Each cell runs in its own process (so peak RSS is its own) on random
Omniglot-shaped data: conv4 (64 filters, batch norm), 28×28×1, Adam 1e-3.
Prints one table: seconds per iteration (median of --iterations after the
first), the first step (tracing + compilation), peak RSS, and the ratios
against the PyTorch column.

    python benchmarks/meta_step.py --iterations=5
"""

import json
import resource
import subprocess
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("iterations", 5, "Timed iterations per cell (after the first step).")
flags.DEFINE_string("cell", None, "Internal: run one cell, as 'workload:implementation'.")
flags.DEFINE_list("workloads", None, "Subset of workloads to run (default: all).")

WORKLOADS = {
    # name: (algorithm, ways, shots, queries per class, meta-batch, inner steps)
    "maml2_5w1s": ("maml", 5, 1, 15, 32, 1),
    "maml1_5w1s": ("fomaml", 5, 1, 15, 32, 1),
    "maml2_20w1s_5steps": ("maml", 20, 1, 5, 16, 5),
    "protonet_5w1s": ("protonet", 5, 1, 15, 32, 0),
}
IMPLEMENTATIONS = ("keras_meta", "keras_meta_reference", "pytorch")


def episode(ways, shots, queries, tasks):
    import numpy as np

    rng = np.random.default_rng(0)
    return (
        rng.uniform(0, 1, (tasks, ways * shots, 28, 28, 1)).astype("float32"),
        np.tile(np.repeat(np.arange(ways), shots), (tasks, 1)).astype("int64"),
        rng.uniform(0, 1, (tasks, ways * queries, 28, 28, 1)).astype("float32"),
        np.tile(np.repeat(np.arange(ways), queries), (tasks, 1)).astype("int64"),
    )


def keras_step(algorithm, ways, steps, per_task_gradients, data):
    import keras

    import keras_meta as km

    support_x, support_y, query_x, query_y = data
    if algorithm == "protonet":
        model = km.ProtoNet(km.learners.conv4_embedding())
    else:
        model = km.MAML(km.learners.conv4(ways), inner_lr=0.4, inner_steps=steps,
                        first_order=algorithm == "fomaml", per_task_gradients=per_task_gradients)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs = {"support_x": support_x, "support_y": support_y.astype("int32"), "query_x": query_x}
    labels = query_y.astype("int32")
    return lambda: model.train_on_batch(inputs, labels)


def torch_step(algorithm, ways, steps, data):
    import torch
    from torch import nn
    from torch.func import functional_call

    torch.manual_seed(0)
    blocks = []
    for in_channels in (1, 64, 64, 64):
        blocks += [nn.Conv2d(in_channels, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                   nn.MaxPool2d(2)]
    body = nn.Sequential(*blocks, nn.Flatten())
    net = body if algorithm == "protonet" else nn.Sequential(body, nn.Linear(64, ways))
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    support_x, support_y, query_x, query_y = (torch.from_numpy(a) for a in data)
    support_x, query_x = support_x.permute(0, 1, 4, 2, 3), query_x.permute(0, 1, 4, 2, 3)
    params = dict(net.named_parameters())
    loss_fn = nn.functional.cross_entropy

    def task_loss(t):
        if algorithm == "protonet":
            support, query = net(support_x[t]), net(query_x[t])
            prototypes = torch.stack([support[support_y[t] == k].mean(0) for k in range(ways)])
            return loss_fn(-torch.cdist(query, prototypes) ** 2, query_y[t])
        fast = params
        for _ in range(steps):
            inner = loss_fn(functional_call(net, fast, (support_x[t],)), support_y[t])
            grads = torch.autograd.grad(inner, list(fast.values()),
                                        create_graph=algorithm == "maml")
            fast = {name: w - 0.4 * g for (name, w), g in zip(fast.items(), grads)}
        return loss_fn(functional_call(net, fast, (query_x[t],)), query_y[t])

    def step():
        optimizer.zero_grad()
        tasks = len(query_y)
        for t in range(tasks):  # accumulate per task: memory of one task at a time
            (task_loss(t) / tasks).backward()
        optimizer.step()

    return step


def run_cell(cell):
    workload, implementation = cell.split(":")
    algorithm, ways, shots, queries, tasks, steps = WORKLOADS[workload]
    data = episode(ways, shots, queries, tasks)
    if implementation == "pytorch":
        step = torch_step(algorithm, ways, steps, data)
    else:
        step = keras_step(algorithm, ways, steps, implementation == "keras_meta", data)
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times = []
    for _ in range(FLAGS.iterations):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": times[len(times) // 2], "first": first, "peak_mib": peak_mib}))


def measure(workload, implementation):
    if implementation == "pytorch":
        try:
            import torch  # noqa: F401
        except ImportError:
            return None
    if implementation == "keras_meta_reference" and WORKLOADS[workload][0] == "protonet":
        return None  # ProtoNet has a single path
    result = subprocess.run(
        [sys.executable, __file__, f"--cell={workload}:{implementation}",
         f"--iterations={FLAGS.iterations}"], capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1][:60]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def cell_text(result):
    if result is None:
        return "—"
    if "error" in result:
        return f"failed: {result['error']}"
    return f"{result['seconds']:.2f} s ({result['first']:.0f} s first, {result['peak_mib']:.0f} MiB)"


def main(argv):
    del argv
    if FLAGS.cell:
        run_cell(FLAGS.cell)
        return
    print("| workload | " + " | ".join(IMPLEMENTATIONS) + " | keras_meta / pytorch |")
    print("| --- " * (len(IMPLEMENTATIONS) + 2) + "|")
    for workload in FLAGS.workloads or WORKLOADS:
        results = {impl: measure(workload, impl) for impl in IMPLEMENTATIONS}
        ours, theirs = results["keras_meta"], results["pytorch"]
        ratio = "—"
        if ours and theirs and "error" not in ours and "error" not in theirs:
            ratio = f"{ours['seconds'] / theirs['seconds']:.2f}×"
        print(f"| {workload} | " + " | ".join(cell_text(results[i]) for i in IMPLEMENTATIONS)
              + f" | {ratio} |", flush=True)


if __name__ == "__main__":
    app.run(main)
