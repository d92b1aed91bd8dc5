"""The `tf.distribute` strategy of a run (`--strategy`), created before any
other TensorFlow work (as `MultiWorkerMirroredStrategy` requires).

- `default`: no distribution (one device).
- `mirrored`: `MirroredStrategy` over every GPU, else over every logical
  CPU device (`cpu_devices` splits the CPU into that many, for trying
  distribution on one machine).
- `multi_worker`: `MultiWorkerMirroredStrategy`, the cluster read from
  `TF_CONFIG` (every worker runs the same command).
"""

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def create(name, cpu_devices=None):
    """The strategy called `name` (one of `STRATEGIES`).

    Args:
      name: the `--strategy` value.
      cpu_devices: if set, the number of logical CPU devices to split the
        first CPU into (must happen before TensorFlow starts its runtime).
    """
    if name not in STRATEGIES:
        raise ValueError(f"`name` must be one of {STRATEGIES}; received {name!r}.")
    if cpu_devices is not None:
        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0],
            [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()
