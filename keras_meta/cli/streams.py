"""The episode streams of a run: training, validation and test.

Seeds: training `seed`, test `seed + 1`, validation `seed + 2`. Omniglot's
splits hold disjoint characters (see `keras_meta.data.omniglot`); sinusoid
tasks are fresh draws. Evaluation streams batch `EVAL_TASKS_PER_BATCH` tasks.
"""

import keras_meta as km

EVAL_TASKS_PER_BATCH = 20
SEED_OFFSETS = {"train": 0, "test": 1, "validation": 2}


def episodes(config, split, meta_batch_size=EVAL_TASKS_PER_BATCH):
    """Episodes of `split` ("train", "validation" or "test") for `config`."""
    seed = config.seed + SEED_OFFSETS[split]
    if config.dataset == "sinusoid":
        return km.data.sinusoid_episodes(shots=config.shots, query_shots=config.query_shots,
                                         meta_batch_size=meta_batch_size, seed=seed)
    return km.data.omniglot_episodes(
        split, ways=config.ways, shots=config.shots, query_shots=config.query_shots,
        meta_batch_size=meta_batch_size, seed=seed, source=config.dataset,
        data_dir=config.data_dir)


def training(config, skip_epochs=0):
    """The meta-training stream, past the first `skip_epochs` epochs (when
    resuming, so that the run sees the batches an uninterrupted one would)."""
    stream = episodes(config, "train", config.meta_batch_size)
    return stream.skip(skip_epochs * config.log_every) if skip_epochs else stream
