"""What one keras_meta meta-iteration holds at its tensor peak, from
TensorFlow's profiler: the tensors alive when the CPU allocator's bytes in
use peak, summed by the op that allocated them.

The profiler (host tracer level 2) records every allocation and
deallocation of TensorFlow's CPU allocator with the allocating op's name
and the allocator's bytes in use after it. Replaying them in time order
gives the set of tensors alive at the peak. Tensors allocated before the
profiled step (weights, optimizer slots, the batch) are in the peak but not
in the list. An op inside a loop (the task loop, the inner loop) allocates
once per iteration, so its line counts every allocation alive.

    python benchmarks/profile_memory.py --workload=maml2_20w1s_5steps
"""

import collections
import glob
import os
import sys
import tempfile

from absl import app, flags

FLAGS = flags.FLAGS


def memory_events(xplane_path):
    """`(picoseconds, allocated, stats)` of every allocation (`allocated`
    True) and deallocation the profiler recorded, in time order; `stats`
    maps the event's stat names (`addr`, `bytes_allocated`,
    `requested_bytes`, `tf_op`, ...) to their values."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as file:
        space.ParseFromString(file.read())
    events = []
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name not in ("MemoryAllocation", "MemoryDeallocation"):
                    continue
                stats = {}
                for stat in event.stats:
                    value = stat.str_value or stat.int64_value or stat.uint64_value
                    if stat.ref_value:
                        value = plane.stat_metadata[stat.ref_value].name
                    stats[plane.stat_metadata[stat.metadata_id].name] = value
                time = line.timestamp_ns * 1000 + event.offset_ps
                events.append((time, name == "MemoryAllocation", stats))
    return sorted(events, key=lambda event: event[0])


def live_at_peak(events):
    """`(peak bytes, live)`: the allocator's most bytes in use after any of
    `events` (as `memory_events` gives them), and the stats of each
    allocation alive at that moment (allocated and not yet freed)."""
    live, peak, at_peak = {}, -1, {}
    for _, allocated, stats in events:
        if allocated:
            live[stats["addr"]] = stats
        else:
            live.pop(stats["addr"], None)
        in_use = int(stats.get("bytes_allocated") or 0)
        if in_use > peak:
            peak, at_peak = in_use, dict(live)
    return peak, list(at_peak.values())


def by_op(allocations):
    """`{op name: (bytes requested, allocations)}` of `allocations`."""
    totals = collections.defaultdict(lambda: [0, 0])
    for stats in allocations:
        total = totals[str(stats.get("tf_op") or "(no op)")]
        total[0] += int(stats.get("requested_bytes") or 0)
        total[1] += 1
    return {op: tuple(total) for op, total in totals.items()}


def main(argv):
    del argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import meta_step
    import tensorflow as tf

    algorithm, ways, shots, queries, tasks, steps, backbone = meta_step.WORKLOADS[FLAGS.workload]
    step = meta_step.keras_step(algorithm, ways, steps, FLAGS.implementation,
                                meta_step.episode(ways, shots, queries, tasks, backbone), backbone)
    step()
    step()
    options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=2)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir, options=options)
        step()
        tf.profiler.experimental.stop()
        events = memory_events(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0])
    peak, live = live_at_peak(events)
    totals = by_op(live)
    mib = 2 ** 20
    print(f"{FLAGS.workload} ({FLAGS.implementation}): tensor peak {peak / mib:.1f} MiB; "
          f"{len(live)} tensors allocated during the step alive then, "
          f"{sum(size for size, _ in totals.values()) / mib:.1f} MiB")
    print("\n| op that allocated them | MiB | tensors |\n| --- | --- | --- |")
    for op, (size, count) in sorted(totals.items(), key=lambda item: -item[1][0])[:FLAGS.top]:
        print(f"| {op} | {size / mib:.2f} | {count} |")


if __name__ == "__main__":
    # Defined only when run as a script: the tests import the replay functions
    # into a process that holds other benchmarks' flags.
    flags.DEFINE_string("workload", "maml2_5w1s", "A workload of benchmarks/meta_step.py.")
    flags.DEFINE_string("implementation", "keras_meta",
                        "A keras_meta implementation of benchmarks/meta_step.py.")
    flags.DEFINE_integer("top", 20, "Ops to list.")
    app.run(main)
