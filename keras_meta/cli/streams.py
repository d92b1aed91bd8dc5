"""The episode streams of a run: training, validation and test.

Seeds: training `seed`, test `seed + 1`, validation `seed + 2`. Omniglot's
splits hold disjoint characters (see `keras_meta.data.omniglot`), the
benchmarks' disjoint classes (`keras_meta.data.benchmarks`); sinusoid
tasks are fresh draws. Evaluation streams batch `EVAL_TASKS_PER_BATCH` tasks.
Meta-RL streams carry task parameters only (`rl_tasks`; batch `i` of a
split is the family's `sample_tasks` at the stateless seed `[seed, i]`, as
`TaskFamily.task_stream`). `finetune` pre-trains on Omniglot on labelled batches of as many images as a
meta-batch of episodes holds.
"""

import functools

import tensorflow as tf

import keras_meta as km
from keras_meta.data import stream as stream_lib

EVAL_TASKS_PER_BATCH = 20
TRIAL_WAYS = 20  # Lake et al.'s within-alphabet one-shot trials
AUGMENTATIONS = {"characters": km.data.augment.characters}
SEED_OFFSETS = {"train": 0, "test": 1, "validation": 2}


def episodes(config, split, meta_batch_size=EVAL_TASKS_PER_BATCH, start=0):
    """Episodes of `split` ("train", "validation" or "test") for `config`,
    from batch `start` on (see `km.data.episodes`); training tasks have
    `config.train_ways` classes where it is set."""
    seed = config.seed + SEED_OFFSETS[split]
    ways = config.train_ways if split == "train" and config.train_ways else config.ways
    if config.dataset == "sinusoid":
        return km.data.sinusoid_episodes(shots=config.shots, query_shots=config.query_shots,
                                         meta_batch_size=meta_batch_size, seed=seed, start=start)
    if config.benchmark:
        return km.data.benchmark_episodes(
            config.dataset, split, ways=ways, shots=config.shots,
            query_shots=config.query_shots, meta_batch_size=meta_batch_size, seed=seed,
            data_dir=config.data_dir, start=start)
    return km.data.omniglot_episodes(
        split, ways=ways, shots=config.shots, query_shots=config.query_shots,
        meta_batch_size=meta_batch_size, seed=seed, source=config.dataset,
        data_dir=config.data_dir, start=start, image_size=config.omniglot_size,
        within_alphabet=split == "train" and config.train_within_alphabet)


def within_alphabet_trials(config):
    """Lake et al.'s one-shot trials on the test split: 20 characters of one
    alphabet (Tagalog's 17, padded), one drawer's drawing of each as support
    and another's as queries; batches of `EVAL_TASKS_PER_BATCH` trials with
    images `[T, 20, size, size, 1]`."""
    return km.data.omniglot_episodes(
        "test", ways=TRIAL_WAYS, shots=1, query_shots=1, meta_batch_size=EVAL_TASKS_PER_BATCH,
        seed=config.seed + SEED_OFFSETS["test"], source=config.dataset,
        data_dir=config.data_dir, image_size=config.omniglot_size, within_alphabet=True)


def training(config, model):
    """The meta-training stream, starting at `model`'s meta-iteration (read
    when `fit` begins iterating, after a backup was restored), so that a
    resumed run sees the batches an uninterrupted one would."""
    if config.rl:
        return rl_tasks(config, model.family, "train", config.meta_batch_size,
                        start=model.optimizer.iterations)
    train = episodes(config, "train", config.meta_batch_size, start=model.optimizer.iterations)
    if config.augment == "none":
        return train
    augmentation = km.data.augment.EpisodeAugmentation(AUGMENTATIONS[config.augment](), "both")
    return km.data.augment.augment_episodes(train, augmentation, seed=config.seed,
                                            start=model.optimizer.iterations)


def rl_tasks(config, family, split, meta_batch_size, start=0):
    """Batches `[meta_batch_size, task_dim]` of task parameters of `split`
    from `family` (a `km.rl.TaskFamily`), from batch `start` on (an int or
    a scalar integer variable read when iteration begins)."""
    seed = config.seed + SEED_OFFSETS[split]
    return stream_lib.counter_stream(
        lambda i: family.sample_tasks(meta_batch_size, tf.stack([tf.constant(seed, tf.int64), i])),
        start=start)


def rl_test_tasks(config, family):
    """The `config.test_tasks` test tasks `[T, task_dim]`: the first batch of
    `rl_tasks(config, family, "test", config.test_tasks)`."""
    return family.sample_tasks(config.test_tasks,
                               tf.constant([config.seed + SEED_OFFSETS["test"], 0], tf.int64))


def labelled(config):
    """`(batches, num_classes)` of the training split for `finetune` on
    Omniglot (a resumed run starts the shuffled stream afresh), else None."""
    if config.algorithm != "finetune" or not config.classification:
        return None
    images = config.meta_batch_size * config.ways * (config.shots + config.query_shots)
    if config.benchmark:
        return km.data.labelled_batches(
            config.dataset, batch_size=images, seed=config.seed, data_dir=config.data_dir,
            tfds_split="train", preprocess=km.data.benchmarks.normalizer(
                *km.data.train_statistics(config.dataset, config.data_dir)))
    return km.data.omniglot_batches("train", batch_size=images, seed=config.seed,
                                    source=config.dataset, data_dir=config.data_dir)


def raw_image_preprocess(config):
    """What the exported `serve` applies to raw images: the dataset's
    preprocessing with `--export_raw_images`, else None (it takes features)."""
    if not config.export_raw_images:
        return None
    if config.benchmark:
        return km.data.benchmark_preprocess(config.dataset, data_dir=config.data_dir)
    return functools.partial(km.data.omniglot_preprocess, image_size=config.omniglot_size)
