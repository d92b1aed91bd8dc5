"""`MetaModel`: a Keras model whose forward pass is "learn from the support
set, predict the query set", so that `fit`, `evaluate`, `predict`,
callbacks and export work on episodes as they do on ordinary batches."""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_meta import adaptation, arguments, episode, export, keras_internals, masking, xla


NON_FINITE_META_GRADIENT = (
    "the meta-loss or the meta-gradient is not finite, so training stopped before updating "
    "the weights. Lower `inner_lr` or the outer learning rate, or clip the inner gradients "
    "(`inner_clipnorm`).")


class MetaModel(keras_internals.SymbolicBuildFromSpec, episode.RaisesPythonErrors, keras.Model):
    """Base class of every meta-learner.

    A `MetaModel` wraps a *learner* (any Keras model: Sequential, Functional or
    subclassed). Its inputs are episode batches (see `km.data.episodes`):
    `call(inputs)` uses each task's support set and returns the query
    predictions, `[T, Q, ways]` logits or `[T, Q, out]` values.

    Loss convention: the *inner* loss of gradient-based algorithms is the
    compiled loss on one task's support set. The *meta-loss* is the compiled
    loss on the query predictions of the whole meta-batch `[T, Q, ...]`; with
    Keras's default mean reduction and equal query sets, that is the mean over
    tasks of each task's query loss. The compiled optimizer updates the
    learner's initial weights (and any meta-parameters of the algorithm).

    Every model trains, evaluates, predicts and exports through four hooks;
    a subclass overrides only those where it differs:

    1. `adapt_and_predict(support_x, support_y, query_x, training, **options)`
       — the forward pass behind `call`, hence `evaluate`, `predict`, export
       and (through `meta_loss`) `fit`; keyword `options` given to the model's
       call reach it. The one hook every subclass defines.
    2. `meta_loss(x, y, sample_weight)` — the query predictions and the loss
       `fit` minimises. Default: the compiled loss (plus the model's
       regularisers) on `self(x, training=True)`.
    3. `meta_gradients(x, y, sample_weight)` — the gradients `fit` applies.
       Default: the gradient of `meta_loss`; override for updates that are
       not a loss gradient (Reptile) or to compute them task by task (MAML).
    4. `export_endpoints()` — extra SavedModel endpoints besides `serve`.

    `train_step` (finite-value check, loss tracking, optimizer step,
    multi-worker reduction of the logs) is shared and not re-implemented
    (`FineTune` only turns episodes into an ordinary batch before it).

    Example: the nearest-class-mean classifier in one hook.

    ```python
    class NearestMean(keras_meta.MetaModel):
        def embed(self, x, training):                       # [T, N, F] → [T, N, D]
            flat = self.learner(tf.reshape(x, [-1, x.shape[-1]]), training=training)
            return tf.reshape(flat, [tf.shape(x)[0], tf.shape(x)[1], -1])

        def adapt_and_predict(self, support_x, support_y, query_x, training=False):
            support = self.embed(support_x, training)
            query = self.embed(query_x, training)
            one_hot = tf.one_hot(support_y, tf.reduce_max(support_y) + 1)  # [T, S, W]
            means = tf.einsum("tsw,tsd->twd", one_hot, support) / tf.reduce_sum(
                one_hot, axis=1)[..., None]                  # [T, W, D]
            return -tf.reduce_sum(tf.square(query[:, :, None] - means[:, None]), -1)
    ```

    Args:
      learner: the Keras model that learns each task. Its batch-norm
        layers run fused and exactly differentiable in training mode
        (`batch_norm.exact_batch_norm`), with Keras's values; under XLA
        (`jit_compile`), batch norm runs element-wise and max pooling's
        second derivative in ordinary ops, exact there too (`xla`); its
        leaky ReLUs' gradients read their outputs (`leaky_relu`). See
        `adaptation.replace_layer_kernels`.
      parallel_tasks: how many tasks of a meta-batch may run at once
        (`tf.map_fn`'s `parallel_iterations`). The tensors held grow with
        it: 1 (the default) holds one task's activations, as a per-task
        PyTorch loop does; on a 2-core CPU, 2 made MAML steps 6-17% faster
        for twice the tensors. Results do not depend on it.

    Example:

    ```python
    class MeanTarget(km.MetaModel):  # predicts the mean support target; learns nothing
        def adapt_and_predict(self, support_x, support_y, query_x, training=False):
            mean = tf.reduce_mean(support_y, axis=1, keepdims=True)
            return tf.broadcast_to(mean, tf.shape(query_x))

    model = MeanTarget(km.learners.mlp())
    model.compile(loss="mse")
    test = km.data.sinusoid_episodes(meta_batch_size=5, seed=1)
    model.evaluate(test, steps=2, verbose=0)
    ```
    """

    # The constructor argument that takes the learner (a subclass names it for its role).
    learner_argument = "learner"

    def __init__(self, learner, parallel_tasks=1, **kwargs):
        if not isinstance(learner, keras.Layer):
            raise TypeError(
                "`learner` must be a Keras model or layer; received "
                f"{type(learner).__name__}."
            )
        arguments.check_int("parallel_tasks", parallel_tasks, minimum=1)
        kwargs.setdefault("dtype", learner.dtype_policy)
        # The meta-model's own computation (update rules, learned rates,
        # distances, losses) runs in its variable dtype: float32 under a mixed
        # policy, whose float16/bfloat16 compute is left to the learner's layers.
        super().__init__(autocast=False, **kwargs)
        self.learner = learner
        self.parallel_tasks = parallel_tasks
        adaptation.replace_layer_kernels(learner)

    def build(self, input_shape):
        """Builds the learner on the episode's feature shape and records the
        learner's output shape (`learner_output_shape`, `(None, *outputs)`).

        Args:
          input_shape: dict of shapes, `support_x` being `[T, S, *features]`.
        """
        episode.check_keys(input_shape)
        self.feature_shape = tuple(input_shape[episode.SUPPORT_X])[2:]
        example = keras.KerasTensor((None, *self.feature_shape), dtype=self.compute_dtype)
        self.learner_output_shape = tuple(self.learner(example).shape)
        self.built = True

    def __call__(self, inputs, *args, **kwargs):
        if not isinstance(inputs, (dict, list, tuple)) and not hasattr(inputs, "shape"):
            episode.check_keys(inputs)  # a str or None: Keras's own error would not name `inputs`
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=False, **options):
        with xla.compiling(self.jit_compile is True):
            if masking.has_masks(inputs):
                with episode.assertions_as_python_errors():
                    return self.padded_call(inputs, training=training, **options)
            with episode.assertions_as_python_errors():
                outputs = self.adapt_and_predict(*self.episode_tensors(inputs),
                                                 training=training, **options)
        return tf.nest.map_structure(self.in_variable_dtype, outputs)

    def padded_call(self, inputs, training=False, **options):
        """`call` on a padded episode (with `support_mask` / `query_mask`):
        each task runs alone on its real entries (see `keras_meta.masking`).

        Args:
          inputs: an episode dict with masks.
          training: as for `call`.
          **options: passed to each task's `call`, whose output must be the
            predictions alone.

        Returns:
          `[T, Q, W]` logits (absent classes at `masking.ABSENT_CLASS_LOGIT`,
          padded queries zero) or `[T, Q, out]` values.
        """
        def predict(task_inputs, task_y, task_weight):
            outputs = self.call(task_inputs, training=training, **options)
            if isinstance(outputs, (tuple, list)):
                raise ValueError(
                    f"{type(self).__name__} returned several outputs for options {options}; "
                    "a padded episode (with masks) takes only calls that return the "
                    "predictions alone.")
            return [outputs]

        return self.map_real_tasks(inputs, predict)[0]

    def map_real_tasks(self, inputs, fn, y=None, sample_weight=None, query_axis=0, extras=()):
        """Runs `fn` on each task of a padded episode cut down to its real entries.

        Args:
          inputs: an episode dict, with or without masks.
          fn: `fn(task_inputs, task_y, task_weight)` on one unpadded task
            (a dict of `[1, ...]` tensors, `[1, q, ...]` targets or None, and
            weights or None) → a list: the query predictions `[1, ..., q, ...]`
            (queries on axis `query_axis + 1`), then tensors of `extras`.
          y, sample_weight: `[T, Q, ...]` query targets and weights, or None.
          query_axis: the query axis of a task's predictions without its task axis.
          extras: `tf.TensorSpec`s of `fn`'s other results, stacked over tasks.

        Returns:
          `[predictions [T, ..., Q, ...] scattered back to the padded queries
          (absent classes masked and padded to a common width), *extras]`.
        """
        inputs = episode.validate_inputs(inputs)
        if not self.built:
            self.build({key: inputs[key].shape for key in episode.KEYS})
        support_mask, query_mask = masking.masks_of(inputs)
        support_y = self.check_labels(inputs[episode.SUPPORT_Y], "support_y")
        classify = support_y.dtype.is_integer
        ways = tf.reduce_max(tf.where(support_mask, tf.cast(support_y, tf.int32), -1), axis=1) + 1
        width = self.num_outputs if self.num_outputs is not None else tf.reduce_max(ways)
        elements = [inputs[episode.SUPPORT_X], support_y, inputs[episode.QUERY_X],
                    support_mask, query_mask, ways]
        optional = [v for v in (y, sample_weight) if v is not None]
        elements += [tf.convert_to_tensor(v) for v in optional]
        ranks = []

        def task(support_x, task_support_y, query_x, task_support_mask, task_query_mask,
                 task_ways, *rest):
            rest = list(rest)
            task_inputs = {
                episode.SUPPORT_X: tf.boolean_mask(support_x, task_support_mask)[None],
                episode.SUPPORT_Y: tf.boolean_mask(task_support_y, task_support_mask)[None],
                episode.QUERY_X: tf.boolean_mask(query_x, task_query_mask)[None]}
            task_y = tf.boolean_mask(rest.pop(0), task_query_mask)[None] if y is not None \
                else None
            task_weight = tf.boolean_mask(rest.pop(0), task_query_mask)[None] \
                if sample_weight is not None else None
            with masking.task_ways(task_ways if classify else None):
                predictions, *others = fn(task_inputs, task_y, task_weight)
            predictions = self.in_variable_dtype(predictions)[0]
            if classify:
                predictions = masking.pad_classes(
                    masking.mask_absent_classes(predictions, task_ways), width)
            ranks.append(predictions.shape.rank)
            return [masking.scatter_rows(predictions, task_query_mask, query_axis), *others]

        signature = [tf.TensorSpec(None, self.variable_dtype), *extras]
        predictions, *others = self.map_tasks(task, tuple(elements), signature)
        predictions.set_shape([None] * (ranks[0] + 1))
        return [predictions, *others]

    def episode_sample_weight(self, x, sample_weight=None):
        """`sample_weight` times the query weights of a padded episode `x`
        (`masking.query_weights`: 0 on padding); unchanged without masks."""
        if not (isinstance(x, dict) and episode.QUERY_MASK in x):
            return sample_weight
        mask = episode.validate_inputs(x)[episode.QUERY_MASK]
        weights = masking.query_weights(mask, self.variable_dtype)
        if sample_weight is None:
            return weights
        return weights * tf.cast(sample_weight, weights.dtype)

    def in_variable_dtype(self, values):
        """Float `values` cast to the model's variable dtype (float32 under a
        mixed policy): the dtype of its predictions and losses."""
        values = tf.convert_to_tensor(values)
        if not values.dtype.is_floating or values.dtype == self.variable_dtype:
            return values
        return tf.cast(values, self.variable_dtype)

    def episode_tensors(self, inputs):
        """Validates an episode's `inputs` (building the model if needed) and
        returns `(support_x, support_y, query_x)`, `support_y` checked by
        `check_labels`."""
        inputs = episode.validate_inputs(inputs)
        if not self.built:
            self.build({key: value.shape for key, value in inputs.items()})
        support_y = self.check_labels(inputs[episode.SUPPORT_Y], "support_y")
        return inputs[episode.SUPPORT_X], support_y, inputs[episode.QUERY_X]

    def adapt_and_predict(self, support_x, support_y, query_x, training=False):
        """Hook 1 (abstract): query predictions `[T, Q, ...]` for a batch of
        tasks. See the class docstring for an example.

        Args:
          support_x: `[T, S, *features]`.
          support_y: `[T, S]` labels or `[T, S, out]` targets.
          query_x: `[T, Q, *features]`.
          training: True inside `fit` (meta-training), False otherwise.
        """
        raise NotImplementedError(f"abstract: {type(self).__name__} must define adapt_and_predict")

    @property
    def num_outputs(self):
        """Size of the last axis of the predictions, if fixed by the model (else None)."""
        return None

    def check_labels(self, labels, name):
        """Checks `labels` (`support_y` or `query_y`) against `num_outputs`:
        int labels must lie in `[0, num_outputs)` (checked at run time, before
        anything uses them), float targets must have `num_outputs` values on
        their last axis. Returns the labels to use."""
        if self.num_outputs is None:
            return labels
        if labels.dtype.is_integer:
            return episode.checked_labels(labels, self.num_outputs, name)
        if labels.shape.rank is not None and labels.shape[-1] not in (None, self.num_outputs):
            raise ValueError(
                f"`{name}` must have {self.num_outputs} target values on its last axis "
                f"(the learner's outputs); received shape {labels.shape}."
            )
        return labels

    def map_tasks(self, fn, tasks, output_signature=None):
        """Applies `fn` to each task of `tasks` (a tuple of `[T, ...]` tensors).

        Tasks run as iterations of one `tf.map_fn` loop over the task
        indices, so the graph does not grow with the meta-batch size and up to
        `parallel_tasks` independent tasks run concurrently; each iteration
        gathers its task's slices (mapping over `tasks` themselves unstacks
        them into lists of tasks first, which can copy the whole meta-batch). `output_signature` (default: one tensor of the
        model's compute dtype) describes `fn`'s per-task result, as in
        `tf.map_fn`.
        """
        return tf.map_fn(
            lambda index: fn(*(tf.gather(values, index) for values in tasks)),
            tf.range(tf.shape(tasks[0])[0]),
            fn_output_signature=output_signature or self.variable_dtype,
            parallel_iterations=self.parallel_tasks,
        )

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if isinstance(x, dict) and y is not None:  # an episode; plain batches as in Keras
            inputs = episode.validate_inputs(x)
            y = self.check_labels(episode.validate_targets(inputs, y), "query_y")
            if y.dtype.is_integer and y_pred is not None:  # labels of the predicted classes
                y = episode.checked_labels(y, tf.shape(y_pred)[-1], "query_y")
            sample_weight = self.episode_sample_weight(x, sample_weight)
        return super().compute_loss(x, y, y_pred, sample_weight, training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Keras's metrics; on a padded episode, of its real query entries
        only: `metrics` count each real query once, `weighted_metrics` weight
        each task equally (`episode_sample_weight`)."""
        if isinstance(x, dict) and episode.QUERY_MASK in x:
            real = episode.validate_inputs(x)[episode.QUERY_MASK]
            sample_weight = tf.boolean_mask(self.episode_sample_weight(x, sample_weight), real)
            y, y_pred = tf.boolean_mask(y, real), tf.boolean_mask(y_pred, real)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def train_step(self, data):
        """One meta-iteration on a meta-batch of `T` tasks: meta-gradients,
        one update of the compiled optimizer, metrics on the query predictions.

        A non-finite meta-loss raises `FloatingPointError`, and so does a
        non-finite meta-gradient, except under dynamic loss scaling
        (`mixed_float16`) above `MIN_LOSS_SCALE`: there, as in Keras, the
        optimizer skips the step and halves the scale."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with xla.compiling(self.jit_compile is True):
            if masking.has_masks(x):
                grads, y_pred, loss = self.padded_meta_gradients(x, y, sample_weight)
            else:
                grads, y_pred, loss = self.meta_gradients(x, y, sample_weight)
        loss, *grads = episode.checked_finite(
            [loss, *grads], NON_FINITE_META_GRADIENT, skippable=len(grads),
            skip=skips_non_finite_step(self.optimizer))
        keras_internals.loss_tracker(self).update_state(
            unscale_for_distribution(loss), sample_weight=tf.shape(y_pred)[0])
        # The optimizer's iteration counter advances only after this step's batch
        # was read, so a stream starting at `optimizer.iterations` reads it first.
        with tf.control_dependencies([loss]):
            self.optimizer.apply(grads, self.trainable_variables)
        return _for_multi_worker_reduction(
            self.compute_metrics(x, y, y_pred, sample_weight=sample_weight))

    def padded_meta_gradients(self, x, y, sample_weight=None):
        """`meta_gradients` of a padded episode (with masks): the mean over
        tasks of `meta_gradients` on each task alone, cut down to its real
        entries (see `keras_meta.masking`). The moving statistics the tasks
        would set (batch norm's) are averaged and assigned once.

        Args:
          x: an episode dict with masks; y: `[T, Q, ...]` query targets;
          sample_weight: `[T, Q]` or None.

        Returns:
          `(grads, y_pred, loss)` as `meta_gradients`.
        """
        variables = self.trainable_variables
        state = [v for v in self.non_trainable_variables
                 if keras.backend.is_float_dtype(v.dtype)]
        y = episode.validate_targets(episode.validate_inputs(x), y)

        def task(task_inputs, task_y, task_weight):
            with keras.StatelessScope() as scope:
                grads, predictions, loss = self.meta_gradients(task_inputs, task_y, task_weight)
            moved = [scope.get_current_value(v) for v in state]
            moved = [tf.convert_to_tensor(v.value) if m is None else m
                     for m, v in zip(moved, state)]
            return [predictions, self.in_variable_dtype(loss), *grads, *moved]

        extras = [tf.TensorSpec((), self.variable_dtype)]
        extras += [tf.TensorSpec(v.shape, v.dtype) for v in variables + state]
        y_pred, losses, *results = self.map_real_tasks(x, task, y, sample_weight, extras=extras)
        means = [tf.reduce_mean(r, axis=0) for r in results]
        grads, moving = means[:len(variables)], means[len(variables):]
        replica = tf.distribute.get_replica_context()
        if moving and replica is not None and replica.num_replicas_in_sync > 1:
            moving = replica.all_reduce(tf.distribute.ReduceOp.MEAN, moving)
        for variable, value in zip(state, moving):
            variable.assign(value)
        return grads, y_pred, tf.reduce_mean(losses)

    def meta_gradients(self, x, y, sample_weight=None):
        """Hook 3: gradients of the meta-loss with respect to `trainable_variables`.

        The outer tape records the inner adaptation of every task (its inner
        tapes included), the query predictions and the meta-loss, so the
        gradient with respect to the initial weights is the exact meta-gradient.

        Returns:
          `(grads, y_pred, loss)`: one gradient per trainable variable, the
          query predictions `[T, Q, ...]` and the scalar meta-loss.

        Example: an update that moves the weights towards their value after
        adaptation, as Reptile's does (`adapted` being the adapted weights):

        ```python
        def meta_gradients(self, x, y, sample_weight=None):
            y_pred, loss = self.meta_loss(x, y, sample_weight)
            grads = [v - a for v, a in zip(self.trainable_variables, adapted)]
            return grads, y_pred, loss
        ```
        """
        with tf.GradientTape() as tape:
            y_pred, loss = self.meta_loss(x, y, sample_weight)
            scaled_loss = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled_loss, self.trainable_variables)
        # A variable the meta-loss does not use (e.g. one replaced by a
        # per-step copy) gets a zero gradient.
        grads = [tf.zeros(v.shape, v.dtype) if g is None else g
                 for g, v in zip(grads, self.trainable_variables)]
        return grads, y_pred, loss

    def meta_loss(self, x, y, sample_weight=None):
        """Hook 2: query predictions `[T, Q, ...]` of the meta-batch and the
        meta-loss: the compiled loss plus the model's regularisers.

        Example: a penalty the forward pass computes joins the meta-loss (as
        in `LEO`). The penalty is returned by the same call, not kept with
        `add_loss`: under `tf.distribute` the replicas share the model's
        list of added losses.

        ```python
        def adapt_and_predict(self, support_x, support_y, query_x, training=False,
                              with_penalty=False):
            predictions, penalty = self.forward(support_x, support_y, query_x)
            return (predictions, penalty) if with_penalty else predictions

        def meta_loss(self, x, y, sample_weight=None):
            y_pred, penalty = self(x, training=True, with_penalty=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            return y_pred, loss + 0.1 * penalty / replicas   # scaled as the loss is
        ```
        """
        y_pred = self(x, training=True)
        loss = keras_internals.compute_compiled_loss(self, x, y, y_pred, sample_weight,
                                                     training=True)
        return y_pred, loss

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, building the model from `x` first, so that
        callbacks that need built weights at `on_train_begin`
        (`BackupAndRestore`) work (see `_build_for_training`)."""
        self._build_for_training(x)
        self.dataset_spec = x.element_spec if isinstance(x, tf.data.Dataset) else None
        return super().fit(x, y, *args, **kwargs)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        """`keras.Model.train_on_batch`, building first as `fit` does."""
        self._build_for_training(x)
        return super().train_on_batch(x, y, *args, **kwargs)

    def _build_for_training(self, x):
        """Builds the model from the shapes of `x` and then its optimizer, in
        the scope of the strategy the model was created under (so that the
        variables are distributed too). Keras would create the optimizer's
        variables in the first step, under `train_step`'s control dependency
        on the loss: their initial values then depend on the step, and an
        XLA-compiled step (`jit_compile=True`) cannot lift them out."""
        with self.distribute_strategy.scope():
            if not self.built:
                shapes = input_shapes(x)
                if shapes is not None:
                    self.build(shapes)
            if self.built and self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None,
               preprocess=None, **kwargs):
        """Exports a SavedModel whose `serve(support_x, support_y, query_x)`
        adapts and predicts, on raw images that it runs through `preprocess`
        when given (see the README's export section); other formats as in Keras."""
        if format != "tf_saved_model" or kwargs:
            if preprocess is not None:
                raise ValueError(f'`preprocess` needs format="tf_saved_model"; received '
                                 f"format={format!r}.")
            return super().export(filepath, format=format, verbose=verbose,
                                  input_signature=input_signature, **kwargs)
        export.export_saved_model(self, filepath, verbose=verbose is not False,
                                  input_signature=input_signature, preprocess=preprocess)

    def export_endpoints(self, episode_specs):
        """Hook 4: the SavedModel endpoints `export` adds besides `serve`.

        Args:
          episode_specs: the `serve` input specs, a dict of `tf.TensorSpec`
            keyed like an episode.

        Returns:
          a dict `{name: (function, input_signature)}`; none by default.

        Example: a metric learner exports its embedding network alone.

        ```python
        def export_endpoints(self, episode_specs):
            x = episode_specs["support_x"]
            spec = tf.TensorSpec((None, *x.shape[2:]), x.dtype, name="x")
            return {"embed": (lambda x: self.embedding(x, training=False), [spec])}
        ```
        """
        return {}

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        self.train_function = _naming_the_iteration(self.train_function, self)
        return self.train_function

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            self.learner_argument: keras.saving.serialize_keras_object(self.learner),
            "parallel_tasks": self.parallel_tasks,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config[cls.learner_argument] = keras.saving.deserialize_keras_object(
            config[cls.learner_argument])
        config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)


# Keras's dynamic loss scale halves at every non-finite step, without a floor.
# A meta-gradient that is not finite at this scale (unscaled) is divergence.
MIN_LOSS_SCALE = 1.0


def skips_non_finite_step(optimizer):
    """A boolean tensor: does `optimizer` skip a step whose gradients are not
    finite (and lower its loss scale) rather than apply it? True for Keras's
    `LossScaleOptimizer` (which `compile` wraps around the optimizer under
    `mixed_float16`) while its scale is above `MIN_LOSS_SCALE`."""
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return tf.constant(False)
    return optimizer.dynamic_scale > MIN_LOSS_SCALE


def _naming_the_iteration(train_function, model):
    """`train_function` whose `FloatingPointError`s name the failed meta-iteration (1-based)."""

    @functools.wraps(train_function)
    def wrapped(*args, **kwargs):
        try:
            return train_function(*args, **kwargs)
        except FloatingPointError as error:
            # The failed step never applied; NumPy reads a variable mirrored by tf.distribute too.
            iteration = int(keras.ops.convert_to_numpy(model.optimizer.iterations)) + 1
            raise FloatingPointError(f"Meta-iteration {iteration}: {error}") from error

    return wrapped


def input_shapes(x):
    """Shapes of the model inputs of `fit`'s `x` (a `tf.data.Dataset` of
    `(inputs, targets)`, or the inputs themselves), or None when they cannot
    be read without consuming data."""
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        inputs = spec[0] if isinstance(spec, tuple) else spec
        return tf.nest.map_structure(lambda s: tuple(s.shape), inputs)
    if isinstance(x, dict):
        return {key: tuple(np.shape(value)) for key, value in x.items()}
    if hasattr(x, "shape"):
        return tuple(x.shape)
    return None


def _for_multi_worker_reduction(logs):
    """Keras reduces step logs across workers with `MEAN` over axis 0, which
    fails for scalars under `MultiWorkerMirroredStrategy` (Keras 3); give
    them that axis there (the reduction removes it again)."""
    strategy = tf.distribute.get_strategy()
    # The same test as Keras's own before that reduction.
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or \
            not keras_internals.in_multi_worker_mode(strategy):
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def unscale_for_distribution(loss):
    """Undoes the `1 / replicas` scaling Keras losses apply inside a replica
    context (meant for gradients that are summed over replicas): the value
    of the loss itself, e.g. an inner loss, or a loss to log."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss * tf.cast(replicas, loss.dtype) if replicas > 1 else loss
