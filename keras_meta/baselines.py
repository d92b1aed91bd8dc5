"""The baselines meta-learning is measured against.

- `FineTune`: transfer learning. Pre-train on all training classes jointly
  (ordinary supervised learning), then fine-tune on each task's support set
  (Chen et al., 2019, "Baseline" / "Baseline++"; the MAML paper's
  "pretrained" rows).
- `MultiTask`: a shared body with task-specific heads, trained jointly on
  all the training tasks of each meta-batch.

Both evaluate like every `MetaModel`: `call(episode)` fits a new head for
the task's ways on the support features (the body stays frozen) and
predicts the query set. Head fitting runs on the inner-loop engine
(the inner loop of `km.MAML`, plain SGD on the compiled loss).
"""

import keras
import tensorflow as tf

from keras_meta import (adaptation, arguments, batch_norm, episode, keras_internals, masking,
                        update_rules)
from keras_meta.algorithms import embedding_model, metric
from keras_meta.meta_model import MetaModel, unscale_for_distribution

HEADS = ("linear", "cosine")
COSINE_SCALE = 10.0


def head_logits(head, weights, features):
    """Applies a head to features.

    Args:
      head: `"linear"` (`weights = [kernel, bias]`) or `"cosine"` (`weights =
        [kernel]`, logits `COSINE_SCALE · cos(features, kernel columns)`).
      weights: `kernel` `[..., D, C]` (and `bias` `[..., C]`).
      features: `[..., N, D]`.

    Returns:
      `[..., N, C]`.

    Example:

    ```python
    features = np.ones((4, 8), "float32")  # [N, D]
    kernel, bias = np.zeros((8, 5), "float32"), np.zeros((5,), "float32")
    km.baselines.head_logits("linear", [kernel, bias], features).shape  # (4, 5)
    ```
    """
    if head == "linear":
        kernel, bias = weights
        return tf.matmul(features, kernel) + bias[..., None, :]
    (kernel,) = weights
    return COSINE_SCALE * tf.matmul(tf.math.l2_normalize(features, axis=-1),
                                    tf.math.l2_normalize(kernel, axis=-2))


@keras.saving.register_keras_serializable(package="keras_meta")
class CosineClassifier(keras.layers.Layer):
    """The Baseline++ classifier: `[N, D]` → `[N, units]` scaled cosine
    similarities to one learned weight vector per class.

    Args:
      units: the number of classes.
      **kwargs: as for any Keras layer (`name`, ...).

    Example:

    ```python
    classifier = keras.Sequential([km.learners.conv4_embedding(),
                                   km.baselines.CosineClassifier(64)])  # Baseline++ pre-training
    ```
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel",
                                      initializer="glorot_uniform")

    def call(self, features):
        return head_logits("cosine", [self.kernel], features)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _check_args(head, steps, learning_rate):
    if head not in HEADS:
        raise ValueError(f"`head` must be one of {HEADS}; received {head!r}.")
    arguments.check_int("steps", steps, minimum=0)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
            or not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be a number > 0; received {learning_rate!r}.")


class HeadFitting(MetaModel):
    """Base of the baselines: a frozen body and a new head per task.

    Args:
      learner: the body, a Keras model `[N, *features]` → `[N, D]`.
      head: `"linear"` (zero-initialised) or `"cosine"` (Baseline++;
        initialised with the mean support feature of each class).
      steps: SGD steps that fit each task's head.
      learning_rate: their learning rate.

    Example:

    ```python
    isinstance(km.baselines.FineTune(km.learners.conv4_embedding()), km.baselines.HeadFitting)
    ```
    """

    def __init__(self, learner, head="linear", steps=100, learning_rate=0.1, **kwargs):
        _check_args(head, steps, learning_rate)
        super().__init__(learner, **kwargs)
        self.head = head
        self.steps = steps
        self.learning_rate = float(learning_rate)

    def build(self, input_shape):
        super().build(input_shape)
        body_shape = self.learner.compute_output_shape((None, *self.feature_shape))
        if len(body_shape) != 2:
            raise ValueError(
                f"`learner` must map examples to feature vectors [N, D] for {type(self).__name__}; "
                f"its output shape is {body_shape}."
            )
        self.feature_size = body_shape[-1]

    def head_loss(self, y, y_pred):
        """Compiled loss on one task's examples, the loss heads are fit with
        (never scaled for distribution: each replica fits its own tasks' heads
        exactly as one device would)."""
        if keras_internals.compiled_loss(self) is None:
            raise ValueError(
                f"{type(self).__name__} fits heads with the compiled loss: call "
                "`compile(loss=...)` before using the model."
            )
        return unscale_for_distribution(keras_internals.compiled_loss(self)(y, y_pred))

    def check_labels(self, labels, name):
        """Int labels as the metric learners' (`embedding_model.checked_class_labels`)."""
        if labels.dtype.is_integer:
            return embedding_model.checked_class_labels(labels, name)
        return super().check_labels(labels, name)

    def outputs_per_task(self, labels):
        """Width of a task's head: the ways (`max(labels) + 1`) for int labels,
        the target size for float targets."""
        if labels.dtype.is_integer:
            return embedding_model.num_ways(labels)
        if self.head != "linear":
            raise TypeError(
                f"A {self.head!r} head classifies: labels must be int; received float targets "
                "(use head='linear' for regression)."
            )
        return labels.shape[-1]

    def initial_head(self, features, labels, outputs):
        """Starting weights of a task's head, from its features `[N, D]`."""
        if self.head == "linear":
            return [tf.zeros([self.feature_size, outputs], features.dtype),
                    tf.zeros([outputs], features.dtype)]
        return [tf.transpose(metric.class_means(features[None], labels[None], outputs)[0])]

    def fit_head(self, features, labels, outputs):
        """Fits a new head to one task: features `[N, D]`, labels `[N]` or
        `[N, out]` → the head's weights."""
        return adaptation.adapt(
            lambda weights, x: head_logits(self.head, weights, x),
            self.head_loss,
            self.initial_head(features, labels, outputs),
            features,
            labels,
            steps=self.steps,
            rule=update_rules.SGD(self.learning_rate),
        )

    def features(self, x, training=False):
        """Body features of a batch of tasks: `[T, N, *features]` → `[T, N, D]`
        (batch norm over all of them, across replicas too: see
        `batch_norm.global_batch_statistics`)."""
        dims = embedding_model.dims(x)
        with batch_norm.global_batch_statistics(self.learner):
            flat = self.learner(tf.reshape(x, [-1, *dims[2:]]), training=training)
        return tf.reshape(flat, [*dims[:2], self.feature_size])

    def adapt_and_predict(self, support_x, support_y, query_x, training=False):
        support = self.features(support_x, training=training)
        query = self.features(query_x, training=training)
        outputs = self.outputs_per_task(support_y)

        def task(task_support, task_support_y, task_query):
            weights = self.fit_head(task_support, task_support_y, outputs)
            return head_logits(self.head, weights, task_query)

        return self.map_tasks(task, (support, support_y, query))

    def get_config(self):
        return {**super().get_config(), "head": self.head, "steps": self.steps,
                "learning_rate": self.learning_rate}


@keras.saving.register_keras_serializable(package="keras_meta")
class FineTune(HeadFitting):
    """Pre-train jointly, then fine-tune on each task's support set.

    With `num_classes` (Chen et al. 2019): `learner` is a body
    `[N, *features]` → `[N, D]`; `fit` pre-trains it with a `head` over all
    `num_classes` training classes on ordinary `(x, y)` batches (global class
    labels, which episodes do not carry); on an episode, a new head for the
    task's ways is fitted on the frozen body's support features
    (`head="linear"` is "Baseline", `"cosine"` is "Baseline++").

    Without `num_classes` (the MAML paper's "pretrained" baseline): `learner`
    is the whole model; `fit` trains it on ordinary batches or on regression
    episodes (every support and query point pooled into one batch), and on
    an episode all its weights are fine-tuned on the support set, with batch
    norm using the statistics of the batch it sees, as in `MAML`.

    Each task starts from the same pre-trained weights: nothing is mutated.

    Args:
      learner: the body (with `num_classes`) or the whole model.
      num_classes: number of pre-training classes, or None.
      head: `"linear"` or `"cosine"` (with `num_classes` only).
      steps: SGD fine-tuning steps per task.
      learning_rate: their learning rate.

    Inputs: an episode dict (→ query predictions `[T, Q, ways]`) or a plain
    batch `[N, *features]` (→ pre-training predictions `[N, num_classes]`).

    Example:

    ```python
    model = km.baselines.FineTune(km.learners.conv4_embedding(), num_classes=64, head="cosine")
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    ```
    """

    def __init__(self, learner, num_classes=None, head="linear", steps=100, learning_rate=0.1,
                 **kwargs):
        if num_classes is not None and (isinstance(num_classes, bool)
                                        or not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"`num_classes` must be an int >= 1 or None; received {num_classes!r}.")
        if num_classes is None and head != "linear":
            raise ValueError(
                f"`head` must be 'linear' without `num_classes` (no new head is fitted); "
                f"received {head!r}."
            )
        super().__init__(learner, head=head, steps=steps, learning_rate=learning_rate, **kwargs)
        self.num_classes = num_classes
        self.pretraining_head = None
        if num_classes is not None:
            head_class = keras.layers.Dense if head == "linear" else CosineClassifier
            self.pretraining_head = head_class(num_classes, name="pretraining_head")
        self.functional_learner = adaptation.FunctionalLearner(learner)

    def build(self, input_shape):
        if not isinstance(input_shape, dict):
            features = tuple(input_shape)[1:]
            input_shape = {episode.SUPPORT_X: (None, None, *features),
                           episode.SUPPORT_Y: (None, None),
                           episode.QUERY_X: (None, None, *features)}
        super().build(input_shape)
        if self.pretraining_head is not None:
            self.pretraining_head.build((None, self.feature_size))

    def call(self, inputs, training=False):
        if isinstance(inputs, dict):
            return super().call(inputs, training=training)
        outputs = self.learner(inputs, training=training)
        return outputs if self.pretraining_head is None else self.pretraining_head(outputs)

    def adapt_and_predict(self, support_x, support_y, query_x, training=False):
        if self.num_classes is not None:
            return super().adapt_and_predict(support_x, support_y, query_x, training=training)
        weights, non_trainable = self.functional_learner.initial_weights()

        ways = masking.current_ways()  # a padded task's classes (None otherwise)

        def forward(task_weights, x):
            return masking.mask_absent_classes(
                self.functional_learner(task_weights, non_trainable, x), ways)

        def task(task_support_x, task_support_y, task_query_x):
            tuned = adaptation.adapt(
                forward, self.head_loss, weights, task_support_x, task_support_y,
                steps=self.steps, rule=update_rules.SGD(self.learning_rate))
            return forward(tuned, task_query_x)

        return self.map_tasks(task, (support_x, support_y, query_x))

    def pooled_examples(self, inputs, query_y):
        """Every (real) support and query point of regression episodes as
        one batch: `([T·(S+Q), *features], [T·(S+Q), out])`."""
        inputs = episode.validate_inputs(inputs)
        query_y = episode.validate_targets(inputs, query_y)
        if inputs[episode.SUPPORT_Y].dtype.is_integer:
            raise ValueError(
                "FineTune pre-trains on ordinary `(x, y)` batches labelled with global class ids "
                "(episodes relabel classes 0..ways-1 per task); received classification "
                "episodes. Only regression episodes can be pooled for pre-training."
            )
        x = tf.concat([inputs[episode.SUPPORT_X], inputs[episode.QUERY_X]], axis=1)
        y = tf.concat([inputs[episode.SUPPORT_Y], query_y], axis=1)
        real = tf.concat(masking.masks_of(inputs), axis=1)  # padded episodes: real points only
        return tf.boolean_mask(x, real), tf.boolean_mask(y, real)

    def train_step(self, data):
        """One ordinary supervised step (episodes are pooled, see `pooled_examples`)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, dict):
            if sample_weight is not None:
                raise ValueError("`sample_weight` is not supported when pre-training on episodes.")
            x, y = self.pooled_examples(x, y)
        return super().train_step((x, y, sample_weight))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="keras_meta")
class MultiTask(HeadFitting):
    """A shared body with task-specific heads, trained on all tasks at once.

    Each training episode is one task with all its examples (support and
    query alike) as training data. For every task of the meta-batch a head
    is fitted on the body's current features; then the body takes one step
    on the joint loss of all tasks under their heads (`meta_loss`; `fit`'s
    metrics read the query examples' predictions under those heads). Unlike
    meta-learning, no data is held out: heads and body minimise the same
    training loss.
    Evaluation is the same as `FineTune`'s: a new head per task, fitted on
    the support set of the frozen body.

    Args:
      learner: the body, `[N, *features]` → `[N, D]`.
      head: `"linear"` or `"cosine"` (classification only).
      steps: SGD steps that fit each head (training and evaluation).
      learning_rate: their learning rate.

    Inputs are episode dicts; outputs are query predictions `[T, Q, ways]`.

    Example:

    ```python
    model = km.baselines.MultiTask(km.learners.conv4_embedding(), steps=20)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    ```
    """

    def meta_loss(self, x, y, sample_weight=None):
        """The joint loss of all tasks' examples `[T, S + Q, ...]` under heads
        fitted to the body's current features (the heads are constants of
        the body's gradient), and the query examples' predictions `[T, Q, ...]`
        under those heads (what `fit`'s metrics report)."""
        if sample_weight is not None:
            raise ValueError("`sample_weight` is not supported by MultiTask.")
        support_x, support_y, query_x = self.episode_tensors(x)
        query_y = self.check_labels(episode.validate_targets(episode.validate_inputs(x), y),
                                    "query_y")
        if support_y.dtype.is_integer:  # no class the support set lacks
            query_y = episode.checked_labels(query_y, embedding_model.num_ways(support_y),
                                             "query_y")
        examples = tf.concat([support_x, query_x], axis=1)
        labels = tf.concat([support_y, tf.cast(query_y, support_y.dtype)], axis=1)
        outputs = self.outputs_per_task(labels)
        features = self.features(examples, training=True)
        heads = tf.map_fn(
            lambda task: self.fit_head(task[0], task[1], outputs),
            (tf.stop_gradient(features), labels),
            fn_output_signature=[features.dtype] * (2 if self.head == "linear" else 1),
        )
        predictions = head_logits(self.head, heads, features)
        loss = keras_internals.compute_compiled_loss(self, None, labels, predictions, None,
                                                     training=True)
        return predictions[:, tf.shape(support_x)[1]:], loss
