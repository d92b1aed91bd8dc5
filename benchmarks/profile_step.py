"""Where one keras_meta meta-iteration spends its time, from TensorFlow's
profiler: the op time of a traced train step (after two warm-up steps),
summed by layer kind and by op type.

Op times are wall times of each op on TensorFlow's inter-op threads (an op
that splits its work across the intra-op pool counts once, for as long as
it runs), so their sum over the step's wall time says how many cores the
step kept busy on average.

    python benchmarks/profile_step.py --workload=maml2_5w1s
"""

import collections
import glob
import os
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import meta_step  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workload", "maml2_5w1s", "A workload of benchmarks/meta_step.py.")
flags.DEFINE_integer("top", 15, "Op types to list.")

LAYER_KINDS = (  # first match wins
    ("batch norm", ("batch_normalization",)),
    ("convolution", ("conv2d",)),
    ("max pooling", ("max_pooling",)),
    ("ReLU", ("re_lu",)),
    ("dense head", ("dense",)),
    ("loss", ("cross_entropy", "crossentropy", "sparse_categorical")),
)


def layer_kind(op_name):
    lowered = op_name.lower()
    for kind, markers in LAYER_KINDS:
        if any(marker in lowered for marker in markers):
            return kind
    return "other (updates, checks, optimizer, loop)"


def op_events(xplane_path):
    """(op name, op type, seconds) of every op run on an inter-op thread."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as file:
        space.ParseFromString(file.read())
    host = next(plane for plane in space.planes if plane.name == "/host:CPU")
    for line in host.lines:
        if not line.name.startswith("tf_Compute"):
            continue
        for event in line.events:
            name = host.event_metadata[event.metadata_id].name
            if ":" in name and "::" not in name:
                op_name, op_type = name.rsplit(":", 1)
                yield op_name, op_type, event.duration_ps * 1e-12


def print_shares(title, seconds, total):
    print(f"\n| {title} | seconds | share of op time |\n| --- | --- | --- |")
    for key, value in sorted(seconds.items(), key=lambda item: -item[1])[:FLAGS.top]:
        print(f"| {key} | {value:.3f} | {value / total:.1%} |")


def main(argv):
    del argv
    import tensorflow as tf

    algorithm, ways, shots, queries, tasks, steps, backbone = meta_step.WORKLOADS[FLAGS.workload]
    step = meta_step.keras_step(algorithm, ways, steps, "keras_meta",
                                meta_step.episode(ways, shots, queries, tasks, backbone), backbone)
    step()
    step()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        step()
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        events = list(op_events(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0]))
    by_kind, by_type = collections.Counter(), collections.Counter()
    for op_name, op_type, seconds in events:
        by_kind[layer_kind(op_name)] += seconds
        by_type[op_type] += seconds
    total = sum(by_type.values())
    print(f"{FLAGS.workload}: one profiled step {wall:.2f} s wall, {len(events)} ops, "
          f"{total:.2f} s of op time ({total / wall:.2f} ops running on average)")
    print_shares("layer kind", by_kind, total)
    print_shares("op type", by_type, total)


if __name__ == "__main__":
    app.run(main)
