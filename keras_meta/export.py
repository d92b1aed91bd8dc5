"""SavedModel export of a `MetaModel`: plain TensorFlow serves it.

The SavedModel holds the model's forward pass ("adapt on the support set,
predict the query set") as a graph of TensorFlow ops, so a process that has
never imported keras_meta (or Keras) reloads it with `tf.saved_model.load`.
Endpoints, also registered as signatures for TF Serving:

- `serve(support_x, support_y, query_x)` (and `serving_default`): query
  predictions `[T, Q, ways]` or `[T, Q, out]`. The number of tasks `T`, of
  support examples `S` and of query examples `Q` are dynamic; so is the
  number of ways for models that read it from the labels (the metric
  learners and the head-fitting baselines); gradient-based models predict
  the `ways` their learner outputs.
- the model's own endpoints (`MetaModel.export_endpoints`), e.g. `embed(x)`
  of the metric learners: `[N, *features]` → `[N, *embedding]`, the
  embedding network alone (in inference mode).

With `preprocess`, `serve` takes raw images instead of features and
preprocesses them itself (by default uint8 `[T, N, H, W, C]` of any size and
channel count, e.g. `km.data.omniglot_preprocess`'s input: Omniglot PNGs as
they decode), so a deployment needs to know nothing of the training
pipeline. The model's own endpoints keep taking features.
"""

import keras
import tensorflow as tf

from keras_meta import episode

SERVE = "serve"
SERVE_PADDED = "serve_padded"
EMBED = "embed"


RAW_IMAGES = tf.TensorSpec((None, None, None, None, None), tf.uint8)


def export_saved_model(model, filepath, verbose=True, input_signature=None, preprocess=None):
    """Writes `model` as a SavedModel with the `serve` (and `embed`) endpoints,
    and `serve_padded(support_x, support_y, query_x, support_mask, query_mask)`
    for padded episodes (bool masks `[T, S]`, `[T, Q]`; see `keras_meta.masking`).

    Args:
      model: a built `MetaModel` (fitted, or called on an episode).
      filepath: directory to write.
      verbose: print the exported endpoints.
      input_signature: optional episode specs, a dict of `tf.TensorSpec`
        with the episode keys (or a one-element list holding it); default
        `episode_signature(model)`, or with `preprocess`, `RAW_IMAGES` for
        `support_x` and `query_x`.
      preprocess: None, or a function of TensorFlow ops `raw images [N, ...]
        → features [N, *feature_shape]` that `serve` applies to `support_x`
        and `query_x` (e.g. `km.data.omniglot_preprocess`).
    """
    if not model.built:
        raise ValueError(
            f"{type(model).__name__} must be built before `export`: fit it or call it on an "
            "episode first."
        )
    if preprocess is not None and not callable(preprocess):
        raise ValueError(
            "`preprocess` must be a function `raw images [N, ...] -> features "
            f"[N, *feature_shape]`, or None; received {preprocess!r}."
        )
    specs = episode_signature(model)
    served_specs = _as_episode_specs(input_signature) or (
        _named({**specs, episode.SUPPORT_X: RAW_IMAGES, episode.QUERY_X: RAW_IMAGES})
        if preprocess is not None else specs)
    # Variables are found through the endpoints; `track(model)` would also
    # trace Keras's default signature, which feeds float labels.
    archive = keras.export.ExportArchive()

    def serve(support_x, support_y, query_x):
        if preprocess is not None:
            support_x, query_x = (_per_image(preprocess, x) for x in (support_x, query_x))
        inputs = {episode.SUPPORT_X: support_x, episode.SUPPORT_Y: support_y,
                  episode.QUERY_X: query_x}
        return model(inputs, training=False)

    archive.add_endpoint(SERVE, serve,
                         input_signature=[served_specs[key] for key in episode.KEYS])

    def serve_padded(support_x, support_y, query_x, support_mask, query_mask):
        if preprocess is not None:
            support_x, query_x = (_per_image(preprocess, x) for x in (support_x, query_x))
        inputs = {episode.SUPPORT_X: support_x, episode.SUPPORT_Y: support_y,
                  episode.QUERY_X: query_x, episode.SUPPORT_MASK: support_mask,
                  episode.QUERY_MASK: query_mask}
        return model(inputs, training=False)

    masks = [tf.TensorSpec((None, None), tf.bool, name=key) for key in episode.MASK_KEYS]
    archive.add_endpoint(SERVE_PADDED, serve_padded,
                         input_signature=[served_specs[key] for key in episode.KEYS] + masks)
    for name, (function, signature) in model.export_endpoints(specs).items():
        archive.add_endpoint(name, function, input_signature=signature)
    archive.write_out(str(filepath), verbose=verbose)


def episode_signature(model):
    """The `serve` input specs of a built `model`, as a dict keyed like an
    episode: `support_x` / `query_x` `[None, None, *features]`; `support_y`
    `[None, None]` int32 labels, or `[None, None, out]` float targets when the
    model was built on regression episodes."""
    features = tf.TensorSpec((None, None, *model.feature_shape), model.variable_dtype)
    built_on = model.get_build_config().get("input_shape")
    support_y_shape = built_on.get(episode.SUPPORT_Y) if isinstance(built_on, dict) else None
    if support_y_shape is not None and len(support_y_shape) == 3:
        labels = tf.TensorSpec((None, None, support_y_shape[-1]), model.variable_dtype)
    else:
        labels = tf.TensorSpec((None, None), tf.int32)
    return _named({episode.SUPPORT_X: features, episode.SUPPORT_Y: labels,
                   episode.QUERY_X: features})


def _per_image(preprocess, images):
    """`preprocess` over `images` `[T, N, ...]` → `[T, N, *features]`."""
    shape = tf.shape(images)
    flat = preprocess(tf.reshape(images, tf.concat([[-1], shape[2:]], 0)))
    return tf.reshape(flat, tf.concat([shape[:2], tf.shape(flat)[1:]], 0))


def _as_episode_specs(input_signature):
    if input_signature is None:
        return None
    if isinstance(input_signature, (list, tuple)) and len(input_signature) == 1:
        input_signature = input_signature[0]
    if not isinstance(input_signature, dict) or set(input_signature) != set(episode.KEYS):
        raise ValueError(
            f"`input_signature` must be a dict of tf.TensorSpec with keys {list(episode.KEYS)} "
            f"(or a list holding one); received {input_signature!r}."
        )
    return _named(input_signature)


def _named(specs):
    """The specs renamed after their episode keys (the signature's input names)."""
    return {key: tf.TensorSpec(spec.shape, spec.dtype, name=key) for key, spec in specs.items()}
