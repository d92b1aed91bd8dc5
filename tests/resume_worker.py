"""A meta-training process for the crash-resume tests: run it, kill it, run
it again with the same arguments, and it finishes the same run.

    python tests/resume_worker.py OUT_DIR [--epochs E] [--steps S] [--kill_in_save K]

MAML on sinusoid episodes, on CPU with op determinism; `AtomicBackupAndRestore`
backs up to `OUT_DIR/backup` each epoch and the stream starts at its
`start_iteration` (the restored meta-iteration). The final weights go to `OUT_DIR/final.npz`.
`--kill_in_save K` makes the process SIGKILL itself in the middle of the
backup of epoch K (weights file half-written, state not committed), once.
"""

import argparse
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_meta as km  # noqa: E402
from keras_meta import backup  # noqa: E402


def kill_in_save_of(epoch, out_dir):
    """Makes the first backup of `epoch` truncate its weights file and SIGKILL the process."""
    marker = os.path.join(out_dir, "killed_in_save")
    flush = backup._flush_to_disk

    def flush_then_die(path):
        if path.endswith(f"epoch-{epoch:06d}.weights.h5") and not os.path.exists(marker):
            open(marker, "w").close()
            with open(path, "r+b") as file:
                file.truncate(os.path.getsize(path) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        flush(path)

    backup._flush_to_disk = flush_then_die


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--kill_in_save", type=int, default=None)
    args = parser.parse_args(argv)
    if args.kill_in_save is not None:
        kill_in_save_of(args.kill_in_save, args.out_dir)

    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    model = km.MAML(km.learners.mlp(hidden=(20, 20)), inner_lr=0.01, inner_steps=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model(next(iter(km.data.sinusoid_episodes(shots=5, query_shots=5, meta_batch_size=1)))[0])
    restore = backup.AtomicBackupAndRestore(os.path.join(args.out_dir, "backup"))
    stream = km.data.sinusoid_episodes(shots=5, query_shots=5, meta_batch_size=5, seed=0,
                                       start=restore.start_iteration)
    model.fit(stream, steps_per_epoch=args.steps, epochs=args.epochs, verbose=0,
              callbacks=[restore])
    final = os.path.join(args.out_dir, "final.npz")
    np.savez(final + ".tmp.npz", *model.get_weights(),
             iterations=model.optimizer.iterations.numpy())
    os.replace(final + ".tmp.npz", final)


if __name__ == "__main__":
    main(sys.argv[1:])
