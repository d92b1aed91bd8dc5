"""Times one meta-iteration: keras_meta's default path, MAML's whole-batch
reference path, ProtoNet's per-task path (`embed_per_task`), two tasks at
once (`parallel_tasks=2`: MAML's default path, ProtoNet's per-task one), and a PyTorch
`torch.func` per-task loop (optional); the default path compiled with XLA
(`jit_compile=True`); then peak memory against the number
of inner steps, with and without `recompute_inner_steps`; then the same at
real size.

Each cell runs in its own process (so peak RSS is its own) on random
data: conv4 (64 filters, batch norm) on 28×28×1 (Omniglot's shape), or
ResNet-12 on 84×84×3 (mini-ImageNet's), Adam 1e-3. Prints three tables.
Each cell: seconds per iteration (median of
--iterations after the first; the second step is often slow, so use 3 or
more) and the first step (tracing + compilation); the peak RSS of the steps
after the first (freed heap returned to the system first), split into the
process with the model built (mostly the framework itself) and what
training adds ("+": activations, compiled graph, allocator caches), and of
that what the process still holds between steps (after the first step, with
freed heap returned); and for
keras_meta the peak bytes held by TensorFlow tensors alone (activations,
gradients, weights) during those steps. Ratios are against the PyTorch
column (peak RSS, and in brackets what training adds).

    python benchmarks/meta_step.py --iterations=5

`--table=mixed_precision` times keras_meta's default path under the Keras
dtype policies float32, mixed_float16 and mixed_bfloat16 (one process per
policy, the policy set before the model is built); ratios are against
float32's.

    python benchmarks/meta_step.py --iterations=5 --table=mixed_precision
"""

import ctypes
import json
import os
import subprocess
import sys
import time

from absl import app, flags

# TensorFlow's oneDNN kernels on any CPU, as `import keras_meta` asks for, even
# though a cell imports keras first.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

FLAGS = flags.FLAGS
flags.DEFINE_integer("iterations", 5, "Timed iterations per cell (after the first step).")
flags.DEFINE_string("cell", None, "Internal: run one cell, as 'workload:implementation'.")
flags.DEFINE_list("workloads", None, "Subset of workloads to run (default: all).")
flags.DEFINE_list("implementations", None,
                  "Subset of implementations to run (default: all; `pytorch` is always run).")
flags.DEFINE_enum("table", "all", ["all", "speed", "memory", "real_size", "mixed_precision"],
                  "Which table to print (`all`: every table but mixed_precision).")
flags.DEFINE_string("policy", "float32", "Internal: the Keras dtype policy of a keras_meta cell.")

WORKLOADS = {
    # name: (algorithm, ways, shots, queries per class, meta-batch, inner steps, backbone)
    "maml2_5w1s": ("maml", 5, 1, 15, 32, 1, "conv4"),
    "maml1_5w1s": ("fomaml", 5, 1, 15, 32, 1, "conv4"),
    "maml2_20w1s_5steps": ("maml", 20, 1, 5, 16, 5, "conv4"),
    "protonet_5w1s": ("protonet", 5, 1, 15, 32, 0, "conv4"),
}
SPEED_WORKLOADS = tuple(WORKLOADS)
SPEED_IMPLEMENTATIONS = ("keras_meta", "keras_meta_reference", "keras_meta_per_task",
                         "keras_meta_two_tasks", "keras_meta_xla", "pytorch")
# keras_meta paths that exist for one kind of workload only.
MAML_ONLY, PROTONET_ONLY = ("keras_meta_reference", "keras_meta_recompute"), ("keras_meta_per_task",)
# Memory against inner steps: 20-way 1-shot, second order.
MEMORY_WORKLOADS = tuple(f"maml2_20w1s_{steps}steps" for steps in (1, 5, 10))
MEMORY_IMPLEMENTATIONS = ("keras_meta", "keras_meta_recompute", "pytorch")
for _name, _steps in zip(MEMORY_WORKLOADS, (1, 5, 10)):
    WORKLOADS.setdefault(_name, ("maml", 20, 1, 5, 16, _steps, "conv4"))
# Real size: ResNet-12 on mini-ImageNet's shape, 5-way 1-shot, 15 queries, 4 tasks.
REAL_SIZE_WORKLOADS = ("maml2_resnet12_5w1s", "protonet_resnet12_5w1s")
WORKLOADS["maml2_resnet12_5w1s"] = ("maml", 5, 1, 15, 4, 1, "resnet12")
WORKLOADS["protonet_resnet12_5w1s"] = ("protonet", 5, 1, 15, 4, 0, "resnet12")
INPUT_SHAPES = {"conv4": (28, 28, 1), "resnet12": (84, 84, 3)}
POLICY_WORKLOADS = ("maml2_5w1s", "protonet_5w1s")
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def episode(ways, shots, queries, tasks, backbone):
    import numpy as np

    rng = np.random.default_rng(0)
    shape = INPUT_SHAPES[backbone]
    return (
        rng.uniform(0, 1, (tasks, ways * shots, *shape)).astype("float32"),
        np.tile(np.repeat(np.arange(ways), shots), (tasks, 1)).astype("int64"),
        rng.uniform(0, 1, (tasks, ways * queries, *shape)).astype("float32"),
        np.tile(np.repeat(np.arange(ways), queries), (tasks, 1)).astype("int64"),
    )


def keras_learner(algorithm, ways, backbone):
    import keras

    import keras_meta as km

    if backbone == "resnet12":
        embedding = km.learners.resnet12()
        if algorithm == "protonet":
            return embedding
        return keras.Sequential([embedding, keras.layers.Dense(ways)])
    return km.learners.conv4_embedding() if algorithm == "protonet" else km.learners.conv4(ways)


def keras_step(algorithm, ways, steps, implementation, data, backbone):
    import keras

    import keras_meta as km

    support_x, support_y, query_x, query_y = data
    learner = keras_learner(algorithm, ways, backbone)
    two_tasks = {"parallel_tasks": 2} if implementation == "keras_meta_two_tasks" else {}
    if algorithm == "protonet":
        model = km.ProtoNet(learner, **two_tasks, embed_per_task=implementation
                            in ("keras_meta_per_task", "keras_meta_two_tasks"))
    else:
        model = km.MAML(learner, inner_lr=0.4, inner_steps=steps,
                        first_order=algorithm == "fomaml",
                        per_task_gradients=implementation != "keras_meta_reference",
                        recompute_inner_steps=implementation == "keras_meta_recompute",
                        **two_tasks)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=implementation == "keras_meta_xla")
    inputs = {"support_x": support_x, "support_y": support_y.astype("int32"), "query_x": query_x}
    labels = query_y.astype("int32")
    return lambda: model.train_on_batch(inputs, labels)


def torch_body(backbone):
    """The PyTorch twin of `keras_learner`'s embedding: `[N, C, H, W]` → `[N, D]`."""
    from torch import nn

    if backbone == "conv4":
        blocks = []
        for in_channels in (1, 64, 64, 64):
            blocks += [nn.Conv2d(in_channels, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(2)]
        return nn.Sequential(*blocks, nn.Flatten()), 64

    class ResidualBlock(nn.Module):
        def __init__(self, in_channels, width):
            super().__init__()
            layers = []
            for conv in range(3):
                layers += [nn.Conv2d(in_channels if conv == 0 else width, width, 3, padding=1,
                                     bias=False), nn.BatchNorm2d(width)]
                if conv < 2:
                    layers.append(nn.LeakyReLU(0.1))
            self.body = nn.Sequential(*layers)
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, width, 1, bias=False),
                                          nn.BatchNorm2d(width))
            self.out = nn.Sequential(nn.LeakyReLU(0.1), nn.MaxPool2d(2, ceil_mode=True))

        def forward(self, x):
            return self.out(self.body(x) + self.shortcut(x))

    widths = (3, 64, 160, 320, 640)
    blocks = [ResidualBlock(a, b) for a, b in zip(widths, widths[1:])]
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten()), widths[-1]


def torch_step(algorithm, ways, steps, data, backbone):
    import torch
    from torch import nn
    from torch.func import functional_call

    torch.manual_seed(0)
    body, features = torch_body(backbone)
    net = body if algorithm == "protonet" else nn.Sequential(body, nn.Linear(features, ways))
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


def proc_status_mib(field):
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def reset_peak_rss():
    """Returns freed heap memory to the system and restarts VmHWM (glibc
    Linux), so that later peaks count what the steps hold, not what the
    first step's compilation left in the allocator."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def reset_tensor_stats():
    """Restarts TensorFlow's count of the peak bytes held by tensors; False
    where the CPU allocator keeps no count (oneDNN off)."""
    import tensorflow as tf

    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
    except ValueError:
        return False
    return True


def run_cell(cell):
    workload, implementation = cell.split(":")
    algorithm, ways, shots, queries, tasks, steps, backbone = WORKLOADS[workload]
    data = episode(ways, shots, queries, tasks, backbone)
    if implementation == "pytorch":
        step = torch_step(algorithm, ways, steps, data, backbone)
    else:
        import keras

        keras.mixed_precision.set_global_policy(FLAGS.policy)
        step = keras_step(algorithm, ways, steps, implementation, data, backbone)
    built_mib = proc_status_mib("VmRSS")
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    reset_peak_rss()
    held_mib = proc_status_mib("VmRSS")  # what the process keeps between steps
    tensor_stats = implementation != "pytorch" and reset_tensor_stats()
    times = []
    for _ in range(FLAGS.iterations):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    result = {"seconds": times[len(times) // 2], "first": first,
              "step_peak_mib": proc_status_mib("VmHWM"), "built_mib": built_mib,
              "held_mib": held_mib}
    if tensor_stats:  # tensors alone: activations, gradients, weights
        import tensorflow as tf

        result["tensor_peak_mib"] = tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**20
    print(json.dumps(result))


def measure(workload, implementation, policy="float32"):
    if FLAGS.implementations and implementation not in (*FLAGS.implementations, "pytorch"):
        return None
    if implementation == "pytorch":
        try:
            import torch  # noqa: F401
        except ImportError:
            return None
    protonet = WORKLOADS[workload][0] == "protonet"
    if implementation in (MAML_ONLY if protonet else PROTONET_ONLY):
        return None
    result = subprocess.run(
        [sys.executable, __file__, f"--cell={workload}:{implementation}",
         f"--iterations={FLAGS.iterations}", f"--policy={policy}"],
        capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1][:60]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def ok(result):
    return result is not None and "error" not in result


def cell_text(result):
    if result is None:
        return "—"
    if "error" in result:
        return f"failed: {result['error']}"
    tensors = result.get("tensor_peak_mib")
    return (f"{result['seconds']:.2f} s, {result['first']:.0f} s first; "
            f"{result['step_peak_mib']:.0f} MiB ({result['built_mib']:.0f} built "
            f"+ {result['step_peak_mib'] - result['built_mib']:.0f}, "
            f"{result['held_mib'] - result['built_mib']:.0f} of it held between steps"
            + ("" if tensors is None else f"; tensors {tensors:.0f}") + ")")


def ratio(ours, theirs, key):
    if not (ok(ours) and ok(theirs)):
        return "—"
    if key == "seconds":
        return f"{ours['seconds'] / theirs['seconds']:.2f}×"
    growth = [r["step_peak_mib"] - r["built_mib"] for r in (ours, theirs)]
    return (f"{ours['step_peak_mib'] / theirs['step_peak_mib']:.2f}× "
            f"(+{growth[0] / growth[1]:.2f}×)")


def print_table(rows, implementations, ratios):
    """One row per workload; `ratios` are (title, implementation, key) against PyTorch."""
    print("| workload | " + " | ".join(implementations)
          + "".join(f" | {title}" for title, _, _ in ratios) + " |")
    print("| --- " * (len(implementations) + len(ratios) + 1) + "|")
    for workload in rows:
        results = {impl: measure(workload, impl) for impl in implementations}
        print(f"| {workload} | " + " | ".join(cell_text(results[i]) for i in implementations)
              + "".join(f" | {ratio(results[impl], results['pytorch'], key)}"
                        for _, impl, key in ratios) + " |", flush=True)


def print_policy_table(rows):
    """keras_meta's default path under each of `POLICIES`, ratios against float32."""
    print("| workload | " + " | ".join(POLICIES) + "".join(
        f" | {policy} / float32 time | {policy} / float32 peak RSS (+)" for policy in POLICIES[1:])
        + " |")
    print("| --- " * (1 + len(POLICIES) + 2 * (len(POLICIES) - 1)) + "|")
    for workload in rows:
        results = {policy: measure(workload, "keras_meta", policy) for policy in POLICIES}
        print(f"| {workload} | " + " | ".join(cell_text(results[p]) for p in POLICIES)
              + "".join(f" | {ratio(results[p], results['float32'], 'seconds')}"
                        f" | {ratio(results[p], results['float32'], 'memory')}"
                        for p in POLICIES[1:]) + " |", flush=True)


def main(argv):
    del argv
    if FLAGS.cell:
        run_cell(FLAGS.cell)
        return
    speed_rows = [w for w in SPEED_WORKLOADS if not FLAGS.workloads or w in FLAGS.workloads]
    memory_rows = [w for w in MEMORY_WORKLOADS if not FLAGS.workloads or w in FLAGS.workloads]
    real_rows = [w for w in REAL_SIZE_WORKLOADS if not FLAGS.workloads or w in FLAGS.workloads]
    if FLAGS.table == "mixed_precision":
        print("keras_meta's default path under each dtype policy:")
        print_policy_table([w for w in (FLAGS.workloads or POLICY_WORKLOADS) if w in WORKLOADS])
        return
    if FLAGS.table in ("all", "speed") and speed_rows:
        print("Seconds per meta-iteration; peak RSS of later steps = model built + training:")
        print_table(speed_rows, SPEED_IMPLEMENTATIONS,
                    [("keras_meta / pytorch time", "keras_meta", "seconds"),
                     ("keras_meta / pytorch peak RSS (+)", "keras_meta", "memory"),
                     ("per task / pytorch peak RSS (+)", "keras_meta_per_task", "memory"),
                     ("two tasks / pytorch time", "keras_meta_two_tasks", "seconds"),
                     ("two tasks / pytorch peak RSS (+)", "keras_meta_two_tasks", "memory"),
                     ("XLA / pytorch time", "keras_meta_xla", "seconds")])
    if FLAGS.table in ("all", "memory") and memory_rows:
        print("\nPeak memory against inner steps, MAML 2nd order, 20-way 1-shot:")
        print_table(memory_rows, MEMORY_IMPLEMENTATIONS,
                    [("recompute / pytorch peak RSS (+)", "keras_meta_recompute", "memory"),
                     ("recompute / pytorch time", "keras_meta_recompute", "seconds")])
    if FLAGS.table in ("all", "real_size") and real_rows:
        print("\nReal size: ResNet-12 on 84×84×3, 5-way 1-shot, 15 queries, 4 tasks:")
        print_table(real_rows, MEMORY_IMPLEMENTATIONS + ("keras_meta_per_task",),
                    [("keras_meta / pytorch time", "keras_meta", "seconds"),
                     ("keras_meta / pytorch peak RSS (+)", "keras_meta", "memory"),
                     ("recompute / pytorch peak RSS (+)", "keras_meta_recompute", "memory")])


if __name__ == "__main__":
    app.run(main)
