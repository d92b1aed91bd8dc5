"""Padded episodes with masks change nothing: for every algorithm of the
zoo, a padded episode's predictions (on its real entries), loss and
meta-gradient equal those of the unpadded tasks, each run alone (the
independent computation: the algorithm's own unmasked path), and a fit
step on it applies their mean gradient."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_meta as km
from tests import algorithm_zoo as zoo


def padded(inputs, query_y, extra_support=2, extra_query=3, seed=5):
    """`inputs`, `query_y` with padding entries (noise images, label 0) at
    random positions, and the masks that mark the real ones."""
    rng = np.random.default_rng(seed)
    tasks, support = inputs["support_y"].shape
    queries = query_y.shape[1]

    def mask(real, extra):
        flags = np.zeros((tasks, real + extra), bool)
        for t in range(tasks):
            flags[t, rng.choice(real + extra, real, replace=False)] = True
        return flags

    support_mask, query_mask = mask(support, extra_support), mask(queries, extra_query)

    def put(values, flags, noise):
        shape = flags.shape + values.shape[2:]
        out = (rng.normal(size=shape) * 5).astype(values.dtype) if noise \
            else np.zeros(shape, values.dtype)
        for t in range(tasks):
            out[t, flags[t]] = values[t]
        return out

    return ({"support_x": put(inputs["support_x"], support_mask, True),
             "support_y": put(inputs["support_y"], support_mask, False),
             "query_x": put(inputs["query_x"], query_mask, True),
             "support_mask": support_mask, "query_mask": query_mask},
            put(query_y, query_mask, False))


def task(inputs, query_y, t):
    return {k: v[t:t + 1] for k, v in inputs.items()}, query_y[t:t + 1]


def _build(entry, learning_rate=0.1):
    keras.utils.set_random_seed(0)
    model = entry.build()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss=entry.loss(model),
                  metrics=["accuracy"])
    return model


@pytest.mark.parametrize("name", zoo.params())
def test_padding_changes_nothing(name):
    model = _build(zoo.entry(name))
    inputs, query_y = zoo.episodes(tasks=2)
    pad_inputs, pad_y = padded(inputs, query_y)
    real = pad_inputs["query_mask"]

    predictions = model(inputs).numpy()                   # inference: tasks independent
    padded_predictions = model(pad_inputs).numpy()
    assert padded_predictions.shape == (2, query_y.shape[1] + 3, zoo.WAYS)
    np.testing.assert_allclose(padded_predictions[real], predictions.reshape(-1, zoo.WAYS),
                               rtol=1e-5, atol=1e-5)
    assert (padded_predictions[~real] == 0).all()

    # Meta-gradient and loss: the mean over tasks of each unpadded task's own.
    per_task = [model.meta_gradients(*task(inputs, query_y, t)) for t in range(2)]
    grads, y_pred, loss = model.padded_meta_gradients(pad_inputs, pad_y)
    np.testing.assert_allclose(float(loss), np.mean([float(l) for _, _, l in per_task]),
                               rtol=1e-5)
    for i, g in enumerate(grads):
        expected = np.mean([np.asarray(p[0][i]) for p in per_task], axis=0)
        np.testing.assert_allclose(np.asarray(g), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(y_pred)[real],
                               np.concatenate([np.asarray(p[1])[0] for p in per_task]),
                               rtol=1e-5, atol=1e-5)
    if isinstance(model, km.MAML):  # tasks independent in training too: the whole batch's
        whole, _, whole_loss = model.meta_gradients(inputs, query_y)
        np.testing.assert_allclose(float(loss), float(whole_loss), rtol=1e-5)
        for g, w in zip(grads, whole):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-6)

    # One `fit` step (compiled) applies that gradient with SGD (FineTune
    # pre-trains on labelled batches, not on classification episodes).
    if zoo.entry(name).data == "labelled":
        return
    before = [v.numpy() for v in model.trainable_variables]
    model.fit(tf.data.Dataset.from_tensors((pad_inputs, pad_y)), epochs=1, verbose=0)
    for v, b, g in zip(model.trainable_variables, before, grads):
        np.testing.assert_allclose(v.numpy(), b - 0.1 * np.asarray(g), rtol=1e-4, atol=1e-5)


def test_padded_ways_mask_absent_classes_like_a_narrower_learner():
    """A 3-way task under a 5-way head equals the 3-way learner holding the
    head's first 3 columns; absent logits are ABSENT_CLASS_LOGIT and their
    weights get no gradient."""
    inputs, query_y = zoo.episodes(tasks=2)
    pad_inputs, pad_y = padded(inputs, query_y)
    models = {}
    for ways in (3, 5):
        keras.utils.set_random_seed(1)
        models[ways] = km.MAML(zoo.classifier(ways), inner_lr=0.5, inner_steps=2)
        models[ways].compile(optimizer="sgd", loss=zoo.CROSSENTROPY)
        models[ways](inputs)
    wide, narrow = models[5], models[3]
    for w, n in zip(wide.trainable_variables, narrow.trainable_variables):
        n.assign(w.numpy()[..., :3] if w.shape != n.shape else w.numpy())
    real = pad_inputs["query_mask"]
    wide_predictions = wide(pad_inputs).numpy()
    np.testing.assert_allclose(wide_predictions[real][:, :3],
                               narrow(inputs).numpy().reshape(-1, 3), rtol=1e-5, atol=1e-5)
    assert (wide_predictions[real][:, 3:] == km.masking.ABSENT_CLASS_LOGIT).all()
    grads, _, loss = wide.padded_meta_gradients(pad_inputs, pad_y)
    narrow_grads, _, narrow_loss = narrow.meta_gradients(inputs, query_y)
    np.testing.assert_allclose(float(loss), float(narrow_loss), rtol=1e-5)
    for g, n in zip(grads, narrow_grads):
        g, n = np.asarray(g), np.asarray(n)
        if g.shape != n.shape:
            assert (g[..., 3:] == 0).all()
            g = g[..., :3]
        np.testing.assert_allclose(g, n, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["MAML", "ProtoNet"])
def test_evaluate_and_task_evaluation_ignore_padding(name):
    model = zoo.entry(name).compiled()
    inputs, query_y = zoo.episodes(tasks=3, seed=2)
    pad_inputs, pad_y = padded(inputs, query_y, seed=7)
    plain = model.evaluate(tf.data.Dataset.from_tensors((inputs, query_y)), verbose=0,
                           return_dict=True)
    masked = model.evaluate(tf.data.Dataset.from_tensors((pad_inputs, pad_y)), verbose=0,
                            return_dict=True)
    for key in plain:
        np.testing.assert_allclose(masked[key], plain[key], rtol=1e-5, err_msg=key)
    results = [km.evaluation.evaluate_tasks(model, [episode], num_tasks=3)
               for episode in ((inputs, query_y), (pad_inputs, pad_y))]
    for field in ("loss", "accuracy", "loss_per_step", "accuracy_per_step"):
        a, b = (getattr(r, field) for r in results)
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=1e-5, err_msg=field)
    # per_task_accuracy with a mask, against a direct count
    scores = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]], "float32")
    labels = np.array([[0, 0, 1]])
    mask = np.array([[True, False, True]])
    assert km.evaluation.per_task_accuracy(labels, scores, mask).numpy().tolist() == [0.5]


def test_exported_serve_padded_matches_the_model(tmp_path):
    model = zoo.entry("ProtoNet").compiled()
    inputs, query_y = zoo.episodes(tasks=2)
    pad_inputs, _ = padded(inputs, query_y)
    expected = model(pad_inputs).numpy()
    model.export(tmp_path / "exported", verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "exported"))
    served = reloaded.serve_padded(
        pad_inputs["support_x"], pad_inputs["support_y"], pad_inputs["query_x"],
        pad_inputs["support_mask"], pad_inputs["query_mask"])
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_bad_masks_are_named():
    model = zoo.entry("ProtoNet").compiled()
    inputs, query_y = zoo.episodes(tasks=2)
    pad_inputs, _ = padded(inputs, query_y)
    with pytest.raises(ValueError, match="support_mask"):
        model({**pad_inputs, "support_mask": pad_inputs["support_mask"][:, :-1]})
    empty = pad_inputs["query_mask"].copy()
    empty[1] = False
    with pytest.raises(ValueError, match="query_mask.*at least one real entry"):
        model({**pad_inputs, "query_mask": empty})
    with pytest.raises(ValueError, match="support_mask.*0 \\(padding\\) and 1"):
        model({**pad_inputs, "support_mask": pad_inputs["support_mask"] * 2.0})
