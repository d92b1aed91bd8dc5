"""benchmarks/profile_memory.py: the tensors alive at the allocator's peak,
replayed from the profiler's allocation events."""

import glob

import pytest
import tensorflow as tf

from benchmarks import profile_memory


def event(allocated, addr, in_use, op=None, size=0):
    return (0, allocated, {"addr": addr, "bytes_allocated": in_use, "tf_op": op,
                           "requested_bytes": size})


def test_the_live_set_is_the_one_at_the_most_bytes_in_use():
    events = [event(True, 1, 10, "a", 10), event(True, 2, 30, "b", 20),
              event(False, 1, 20), event(True, 3, 25, "c", 5), event(True, 4, 29, "c", 4)]
    peak, live = profile_memory.live_at_peak(events)
    assert peak == 30
    assert sorted(stats["addr"] for stats in live) == [1, 2]
    assert profile_memory.by_op(live) == {"a": (10, 1), "b": (20, 1)}
    assert profile_memory.by_op(profile_memory.live_at_peak(events[2:])[1]) == {
        "c": (9, 2)}


def test_a_profiled_step_names_its_largest_tensor(tmp_path):
    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
    except ValueError:
        pytest.skip("this CPU allocator records no allocations (oneDNN off)")

    @tf.function
    def step(x):
        big = tf.tile(x, [1 << 20], name="four_mebibytes")  # 4 MiB of float32
        return tf.reduce_sum(big * 2.0)

    x = tf.ones([1])
    step(x)
    options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=2)
    tf.profiler.experimental.start(str(tmp_path), options=options)
    step(x)
    tf.profiler.experimental.stop()
    events = profile_memory.memory_events(
        glob.glob(f"{tmp_path}/**/*.xplane.pb", recursive=True)[0])
    peak, live = profile_memory.live_at_peak(events)
    totals = profile_memory.by_op(live)
    assert totals["four_mebibytes"] == (4 << 20, 1)
    assert peak >= 4 << 20
