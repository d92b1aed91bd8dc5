"""MAML for reinforcement learning (Finn et al. 2017, section 5.3) as a Keras model."""

import keras
import numpy as np
import tensorflow as tf

from keras_meta import adaptation, arguments, episode, update_rules
from keras_meta.rl import returns as returns_lib
from keras_meta.rl import objectives, rollout as rollout_lib, trpo
from keras_meta.rl.policies import CategoricalPolicy, GaussianPolicy
from keras_meta.rl.tasks import TaskFamily

OUTER_STEPS = ("trpo", "ppo", "gradient")
NON_FINITE_OUTER = ("the meta-objective or its gradient is not finite, so training stopped "
                    "before updating the policy. Lower `inner_lr`, `max_kl` or the optimizer's "
                    "learning rate.")


def check_policy_matches(policy, family):
    """Raises a `ValueError` naming `policy` unless its action distribution
    fits the family's action space (builds the policy on the family's
    observations if needed)."""
    if not isinstance(policy, (GaussianPolicy, CategoricalPolicy)):
        raise TypeError("`policy` must be a `keras_meta.rl.GaussianPolicy` or "
                        f"`keras_meta.rl.CategoricalPolicy`; received {type(policy).__name__}.")
    if not policy.built:
        policy.build((None, family.observation_dim))
    expected = "GaussianPolicy" if family.action_kind == "continuous" else "CategoricalPolicy"
    dist = policy.distribution
    size = dist.action_dim if dist.kind == "continuous" else dist.num_actions
    if dist.kind != family.action_kind or size != family.action_dim:
        raise ValueError(
            f"`policy` does not match the task family's action space: the family takes "
            f"{family.action_kind} actions of size {family.action_dim} (a {expected} with "
            f"{family.action_dim} outputs), the policy is a {type(policy).__name__} with "
            f"{size} outputs.")
    try:
        policy.compute_output_shape((None, family.observation_dim))
        policy.network.compute_output_shape((None, family.observation_dim))
    except Exception as error:
        raise ValueError(f"`policy` must take observations of size {family.observation_dim} "
                         f"(the family's `observation_dim`): {error}") from error
    inputs = getattr(policy.network, "inputs", None)
    if inputs and inputs[0].shape[-1] not in (None, family.observation_dim):
        raise ValueError(f"`policy` takes observations of size {inputs[0].shape[-1]}; the task "
                         f"family's are of size {family.observation_dim}.")


@keras.saving.register_keras_serializable(package="keras_meta")
class MAMLRL(episode.RaisesPythonErrors, keras.Model):
    """MAML-RL: meta-learns a policy's initial weights θ from which
    `inner_steps` policy-gradient steps on a new task's trajectories give a
    good policy for that task.

    One meta-iteration (`train_step`, inside `fit`) takes a batch of tasks
    `[T, task_dim]` and, for each task: samples `num_trajectories`
    trajectories with π_θ, fits the linear feature baseline, takes one
    policy-gradient step θ' = θ + α ∇ L_inner (REINFORCE with the baseline;
    `inner_steps` such steps, each on freshly sampled trajectories), and
    samples trajectories with π_θ'. The outer step then maximises the
    post-update surrogate, differentiated through the inner steps:

    - `outer="trpo"` (the paper's): conjugate gradient on Hessian-vector
      products of the mean KL between the old and new post-update policies,
      then a backtracking line search under `max_kl`;
    - `outer="ppo"`: `ppo_epochs` steps of the compiled optimizer on PPO's
      clipped surrogate, re-running the inner steps on the stored
      pre-update trajectories each time (with importance weights, as ProMP);
    - `outer="gradient"`: one step of the compiled optimizer on the
      surrogate's gradient.

    The inner surrogate is `estimator` (`objectives.inner_surrogate`): with
    "dice" (default) its second derivative carries the score-function term
    of the pre-update sampling distribution, so the meta-gradient estimates
    the gradient of the expected return *after* adaptation.
    `first_order=True` treats the inner gradients as constants (first-order
    MAML). Inner steps run on the shared inner-loop engine
    (`adaptation.adapt`) with `inner_rule` (SGD of `inner_lr` by
    default).

    Sampling is on-policy inside the step: the data stream carries only task
    parameters. `evaluate` reports the mean return after 0 … `eval_inner_steps`
    adaptation steps (`return_0`, `return_1`, ...); `call`/`predict` run the
    initial policy (distribution parameters of observations `[N, O]`);
    `adapted_policy` returns a plain Keras policy adapted to one task.

    Args:
      policy: a `keras_meta.rl.GaussianPolicy` or `keras_meta.rl.CategoricalPolicy`.
      family: the `keras_meta.rl.TaskFamily` tasks come from.
      inner_lr: α (0.1 in the paper); leave unset with `inner_rule`.
      inner_steps: adaptation steps during meta-training (≥ 0; 0 trains one
        policy on all tasks jointly: the "pre-trained" baseline).
      eval_inner_steps: adaptation steps `evaluate` reports (default `inner_steps`).
      num_trajectories: trajectories per task and adaptation step (20).
      first_order: drop the second-order terms.
      estimator: the inner surrogate, "dice", "lvc" or "naive".
      outer: "trpo", "ppo" or "gradient".
      max_kl: TRPO's trust region (0.01).
      cg_iterations: TRPO's conjugate-gradient steps.
      cg_damping: added to the KL Hessian's diagonal.
      backtrack_ratio: TRPO's line-search shrink factor.
      max_backtracks: TRPO's line-search trials.
      ppo_clip: PPO's ε.
      ppo_epochs: PPO's optimizer steps per meta-iteration.
      discount: γ of the returns-to-go.
      baseline: subtract the linear feature baseline.
      normalize_advantages: standardise each task's advantages.
      seed: seed of the trajectory sampling.
      parallel_tasks: tasks sampled and differentiated at once.
      inner_rule: a `keras_meta.update_rules.UpdateRule` instead of SGD
        (each inner step is one call of the engine on fresh trajectories, so
        a rule's per-task state restarts at every step).
      **kwargs: `keras.Model` arguments.

    Example:

    ```python
    family = km.rl.Navigation2D(horizon=10)
    model = km.rl.MAMLRL(km.rl.mlp_policy(2, 2, hidden=(16,)), family,
                         num_trajectories=4, inner_lr=0.1, cg_iterations=3)
    model.compile()
    model.fit(family.task_stream(meta_batch_size=2, seed=0), steps_per_epoch=1, epochs=1,
              verbose=0)
    model.evaluate(family.task_stream(meta_batch_size=2, seed=1), steps=1, return_dict=True)
    ```
    """

    def __init__(self, policy, family, inner_lr=None, inner_steps=1, eval_inner_steps=None,
                 num_trajectories=20, first_order=False, estimator="dice", outer="trpo",
                 max_kl=0.01, cg_iterations=10, cg_damping=1e-5, backtrack_ratio=0.8,
                 max_backtracks=15, ppo_clip=0.2, ppo_epochs=5, discount=0.99, baseline=True,
                 normalize_advantages=True, seed=0, parallel_tasks=2, inner_rule=None,
                 **kwargs):
        if not isinstance(family, TaskFamily):
            raise TypeError("`family` must be a `keras_meta.rl.TaskFamily`; received "
                            f"{type(family).__name__}.")
        check_policy_matches(policy, family)
        if inner_rule is not None and inner_lr is not None:
            raise TypeError("MAMLRL takes `inner_lr` or `inner_rule`, not both.")
        if inner_rule is None:
            inner_lr = 0.1 if inner_lr is None else inner_lr
            arguments.check_finite_number("inner_lr", inner_lr)
            inner_rule = update_rules.SGD(float(inner_lr))
        update_rules.check_rule(inner_rule)
        arguments.check_int("inner_steps", inner_steps, minimum=0)
        arguments.check_int("eval_inner_steps", eval_inner_steps, minimum=0, allow_none=True)
        arguments.check_size("num_trajectories", num_trajectories)
        objectives.check_estimator(estimator)
        if outer not in OUTER_STEPS:
            raise ValueError(f"`outer` must be one of {OUTER_STEPS}; received {outer!r}.")
        arguments.check_finite_number("max_kl", max_kl, above=0)
        arguments.check_int("cg_iterations", cg_iterations, minimum=1)
        arguments.check_finite_number("cg_damping", cg_damping, minimum=0)
        arguments.check_finite_number("backtrack_ratio", backtrack_ratio, above=0)
        if backtrack_ratio >= 1:
            raise ValueError(f"`backtrack_ratio` must be in (0, 1); received {backtrack_ratio!r}.")
        arguments.check_int("max_backtracks", max_backtracks, minimum=1)
        arguments.check_finite_number("ppo_clip", ppo_clip, above=0)
        arguments.check_int("ppo_epochs", ppo_epochs, minimum=1)
        arguments.check_finite_number("discount", discount, minimum=0)
        if discount > 1:
            raise ValueError(f"`discount` must be in [0, 1]; received {discount!r}.")
        for name in ("first_order", "baseline", "normalize_advantages"):
            arguments.check_bool(name, locals()[name])
        arguments.check_int("seed", seed)
        arguments.check_int("parallel_tasks", parallel_tasks, minimum=1)
        super().__init__(**kwargs)
        self.policy, self.family = policy, family
        self.inner_lr, self.inner_rule = inner_lr, inner_rule
        self.inner_steps = inner_steps
        self.eval_inner_steps = inner_steps if eval_inner_steps is None else eval_inner_steps
        self.num_trajectories, self.first_order, self.estimator = (
            num_trajectories, first_order, estimator)
        self.outer, self.max_kl, self.cg_iterations, self.cg_damping = (
            outer, float(max_kl), cg_iterations, float(cg_damping))
        self.backtrack_ratio, self.max_backtracks = float(backtrack_ratio), max_backtracks
        self.ppo_clip, self.ppo_epochs = float(ppo_clip), ppo_epochs
        self.discount, self.baseline = float(discount), baseline
        self.normalize_advantages, self.seed = normalize_advantages, seed
        self.parallel_tasks = 1 if family.python_simulated else parallel_tasks
        self.functional_policy = adaptation.FunctionalLearner(policy)
        self.distribution = policy.distribution
        self.supports_jit = False
        self.sampling_step = self.add_weight(shape=(), dtype="int64", initializer="zeros",
                                             trainable=False, name="sampling_step")
        self.inner_rule.build(self, policy.trainable_variables)
        self.trackers = {"loss": keras.metrics.Mean(name="loss"),
                         "kl": keras.metrics.Mean(name="kl")}
        for k in range(max(self.inner_steps, self.eval_inner_steps) + 1):
            self.trackers[f"return_{k}"] = keras.metrics.Mean(name=f"return_{k}")
        self.built = True

    # Keras ------------------------------------------------------------------

    @property
    def metrics(self):
        """The trackers `fit` and `evaluate` log: `loss` (minus the
        post-update surrogate), `kl` and `return_k`."""
        return list(self.trackers.values())

    def call(self, observations, training=False):
        """The initial policy's distribution parameters `[N, P]` for
        observations `[N, O]` (what `predict` returns)."""
        return self.policy(observations, training=training)

    def compute_output_shape(self, input_shape):
        return self.policy.compute_output_shape(input_shape)

    # Sampling and adaptation ------------------------------------------------

    def policy_fn(self, weights, non_trainable):
        """Observations `[N, O]` → distribution parameters, with the policy's
        weights given as tensors."""
        return lambda obs: self.functional_policy(weights, non_trainable, obs)

    def task_advantages(self, data):
        """Advantages `[N, H]` of one batch of trajectories (see `advantages`)."""
        return returns_lib.advantages(
            data[rollout_lib.OBSERVATIONS], data[rollout_lib.REWARDS], self.discount,
            baseline=self.baseline, normalize=self.normalize_advantages)

    def inner_update(self, weights, non_trainable, data):
        """One policy-gradient step on one task's trajectories `data` (with
        `advantages`): the adapted weights, differentiable in `weights`."""
        shape = tf.shape(data[rollout_lib.LOG_PROBS])
        obs = tf.reshape(data[rollout_lib.OBSERVATIONS], [-1, self.family.observation_dim])
        targets = (data[rollout_lib.ACTIONS], data[rollout_lib.LOG_PROBS], data["advantages"])

        def forward(w, x):
            params = self.functional_policy(w, non_trainable, x)
            return tf.reshape(params, tf.concat([shape, [-1]], 0))

        def loss(y, params):
            actions, sampling_log_probs, adv = y
            log_probs = self.distribution.log_prob(params, actions)
            return -objectives.inner_surrogate(log_probs, sampling_log_probs, adv,
                                               self.estimator)

        return adaptation.adapt(forward, loss, weights, obs, targets, steps=1,
                                rule=self.inner_rule, first_order=self.first_order)

    def sample_task(self, weights, non_trainable, task, seed, steps):
        """Samples one task through `steps` adaptation steps.

        Returns a dict of `[steps + 1, N, H, ...]` tensors (the trajectories
        of each adaptation step, with their `advantages`), all constants."""
        seeds = tf.random.experimental.stateless_split(seed, steps + 1)
        phases = []
        for k in range(steps + 1):
            data = rollout_lib.rollout(self.family, self.policy_fn(weights, non_trainable),
                                       self.distribution, task, self.num_trajectories, seeds[k])
            data["advantages"] = self.task_advantages(data)
            phases.append(data)
            if k < steps:
                weights = [tf.stop_gradient(w) for w in
                           self.inner_update(weights, non_trainable, data)]
        return {key: tf.stack([p[key] for p in phases]) for key in phases[0]}

    def adapted_weights(self, weights, non_trainable, data, steps):
        """θ after `steps` inner steps on the stored trajectories `data`,
        differentiable in `weights` (equal to the sampling's at the weights
        that sampled them)."""
        for k in range(steps):
            weights = self.inner_update(weights, non_trainable, _phase(data, k))
        return weights

    def task_seeds(self, count, offset=0):
        """`[count, 2]` stateless seeds for this sampling step."""
        base = tf.stack([tf.constant(self.seed + offset, tf.int64), self.sampling_step.value])
        return tf.random.experimental.stateless_split(base, count)

    def sample(self, tasks, steps, seeds, weights=None):
        """Samples every task of `tasks` `[T, task_dim]` (see `sample_task`);
        returns a dict of `[T, steps + 1, N, H, ...]` tensors."""
        weights, non_trainable = weights or self.functional_policy.initial_weights()
        weights = [tf.stop_gradient(w) for w in weights]
        horizon, n = self.family.horizon, self.num_trajectories
        specs = {rollout_lib.OBSERVATIONS: [self.family.observation_dim],
                 rollout_lib.ACTIONS: [self.distribution.action_dim],
                 rollout_lib.REWARDS: [], rollout_lib.PARAMS: [self.distribution.params_dim],
                 rollout_lib.LOG_PROBS: [], "advantages": []}
        signature = {key: tf.TensorSpec([steps + 1, n, horizon] + shape, tf.float32)
                     for key, shape in specs.items()}
        return tf.map_fn(lambda e: self.sample_task(weights, non_trainable, e[0], e[1], steps),
                         (tf.cast(tasks, tf.float32), seeds), fn_output_signature=signature,
                         parallel_iterations=self.parallel_tasks)

    # Outer objectives ---------------------------------------------------------

    def task_objective(self, weights, non_trainable, data, kind="surrogate"):
        """One task's post-update objective from its stored trajectories:
        `"surrogate"` (TRPO's importance surrogate), `"clipped"` (PPO's) or
        `"kl"` (mean KL from the sampling post-update policy)."""
        adapted = self.adapted_weights(weights, non_trainable, data, self.inner_steps)
        last = _phase(data, self.inner_steps)
        params = self.functional_policy(adapted, non_trainable, tf.reshape(
            last[rollout_lib.OBSERVATIONS], [-1, self.family.observation_dim]))
        old = tf.reshape(last[rollout_lib.PARAMS], tf.shape(params))
        if kind == "kl":
            return tf.reduce_mean(self.distribution.kl(old, params))
        log_probs = tf.reshape(self.distribution.log_prob(params, tf.reshape(
            last[rollout_lib.ACTIONS], [-1, self.distribution.action_dim])),
            tf.shape(last[rollout_lib.LOG_PROBS]))
        if kind == "clipped":
            return objectives.clipped_surrogate(log_probs, last[rollout_lib.LOG_PROBS],
                                                last["advantages"], self.ppo_clip)
        return objectives.importance_surrogate(log_probs, last[rollout_lib.LOG_PROBS],
                                               last["advantages"])

    def _map(self, fn, data, signature):
        return tf.map_fn(fn, data, fn_output_signature=signature,
                         parallel_iterations=self.parallel_tasks)

    def task_gradients(self, data, kind="surrogate", weights=None):
        """Per-task values `[T]` and gradients (one `[T, *shape]` tensor per
        policy weight) of `task_objective` with respect to the initial weights."""
        initial, non_trainable = self.functional_policy.initial_weights()
        weights = initial if weights is None else weights

        def task(d):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                value = self.task_objective(weights, non_trainable, d, kind)
            grads = tape.gradient(value, weights,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return [value, *grads]

        signature = [tf.TensorSpec((), tf.float32)]
        signature += [tf.TensorSpec(w.shape, w.dtype) for w in weights]
        value, *grads = self._map(task, data, signature)
        return value, grads

    def meta_gradients(self, tasks, seeds=None):
        """Samples `tasks` `[T, task_dim]` and returns `(values [T], grads)`:
        each task's post-update surrogate and its meta-gradient with respect
        to θ (one `[T, *shape]` tensor per weight; their mean over tasks is
        the step of `outer="gradient"`).

        Args:
          tasks: `[T, task_dim]`.
          seeds: `[T, 2]` stateless seeds (default: this step's).
        """
        tasks = tf.convert_to_tensor(tasks, tf.float32)
        seeds = self.task_seeds(tf.shape(tasks)[0]) if seeds is None else seeds
        data = self.sample(tasks, self.inner_steps, seeds)
        return self.task_gradients(data)

    def kl_hvp(self, data, vector):
        """The mean KL's Hessian (through the inner steps) times `vector`,
        a list of tensors shaped like the policy's weights."""
        weights, non_trainable = self.functional_policy.initial_weights()

        def task(d):
            with tf.GradientTape() as outer:
                outer.watch(weights)
                with tf.GradientTape() as inner:
                    inner.watch(weights)
                    kl = self.task_objective(weights, non_trainable, d, "kl")
                grads = inner.gradient(kl, weights,
                                       unconnected_gradients=tf.UnconnectedGradients.ZERO)
                product = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(grads, vector)])
            return outer.gradient(product, weights,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)

        signature = [tf.TensorSpec(w.shape, w.dtype) for w in weights]
        return [tf.reduce_mean(h, 0) for h in self._map(task, data, signature)]

    def evaluate_at(self, data, weights):
        """`(mean surrogate, mean KL)` over tasks at the given initial weights."""
        _, non_trainable = self.functional_policy.initial_weights()

        def task(d):
            return tf.stack([self.task_objective(weights, non_trainable, d, "surrogate"),
                             self.task_objective(weights, non_trainable, d, "kl")])

        values = self._map(task, data, tf.TensorSpec([2], tf.float32))
        return tf.reduce_mean(values[:, 0]), tf.reduce_mean(values[:, 1])

    # Steps --------------------------------------------------------------------

    def returns(self, data):
        """Mean undiscounted return per task and adaptation step, `[T, steps + 1]`."""
        return tf.reduce_mean(tf.reduce_sum(data[rollout_lib.REWARDS], -1), -1)

    def train_step(self, data):
        tasks, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        tasks = self.check_tasks(tasks)
        samples = self.sample(tasks, self.inner_steps, self.task_seeds(tf.shape(tasks)[0]))
        variables = self.policy.trainable_variables
        if self.outer == "trpo":
            surrogate, kl = self.trpo_update(samples, variables)
        else:
            kind = "clipped" if self.outer == "ppo" else "surrogate"
            for _ in range(self.ppo_epochs if self.outer == "ppo" else 1):
                values, grads = self.task_gradients(samples, kind)
                grads = [-tf.reduce_mean(g, 0) for g in grads]
                value, *grads = episode.checked_finite([tf.reduce_mean(values), *grads],
                                                       NON_FINITE_OUTER)
                self.optimizer.apply(grads, variables)
            surrogate, kl = self.evaluate_at(samples, [tf.convert_to_tensor(v.value)
                                                       for v in variables])
        self.sampling_step.assign_add(1)
        self.trackers["loss"].update_state(-surrogate)
        self.trackers["kl"].update_state(kl)
        return self.log_returns(self.returns(samples), ["loss", "kl"])

    def trpo_update(self, samples, variables):
        """One TRPO outer step; returns the surrogate and KL after it."""
        weights = [tf.convert_to_tensor(v.value) for v in variables]
        shapes = [w.shape for w in weights]
        _, grads = self.task_gradients(samples)
        gradient = _flatten([tf.reduce_mean(g, 0) for g in grads])
        gradient = episode.checked_finite([gradient], NON_FINITE_OUTER)[0]
        step = trpo.trpo_step(
            _flatten(weights), gradient,
            lambda v: _flatten(self.kl_hvp(samples, _unflatten(v, shapes))),
            lambda p: self.evaluate_at(samples, _unflatten(p, shapes)),
            max_kl=self.max_kl, cg_iterations=self.cg_iterations, damping=self.cg_damping,
            backtrack_ratio=self.backtrack_ratio, max_backtracks=self.max_backtracks)
        new = episode.checked_finite([step["params"]], NON_FINITE_OUTER)[0]
        for variable, value in zip(variables, _unflatten(new, shapes)):
            variable.assign(value)
        if getattr(self, "optimizer", None) is not None:
            self.optimizer.iterations.assign_add(1)
        return step["surrogate"] + step["improvement"], step["kl"]

    def test_step(self, data):
        tasks, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        tasks = self.check_tasks(tasks)
        seeds = self.task_seeds(tf.shape(tasks)[0], offset=1)
        samples = self.sample(tasks, self.eval_inner_steps, seeds)
        self.sampling_step.assign_add(1)
        return self.log_returns(self.returns(samples))

    def log_returns(self, returns, names=()):
        """Updates `return_k` with the mean returns `[T, steps + 1]`; the
        logs of those and of `names`."""
        names = list(names)
        for k in range(returns.shape[1]):
            self.trackers[f"return_{k}"].update_state(returns[:, k])
            names.append(f"return_{k}")
        return {name: self.trackers[name].result() for name in names}

    def check_tasks(self, tasks):
        """`tasks` as float32 `[T, task_dim]`, or a `ValueError` naming it."""
        tasks = tf.convert_to_tensor(tasks)
        if tasks.shape.rank != 2 or tasks.shape[-1] not in (None, self.family.task_dim):
            raise ValueError(f"`tasks` (`x` of fit/evaluate) must be [T, "
                             f"{self.family.task_dim}] task parameters; received shape "
                             f"{tasks.shape}.")
        return episode.checked_finite_values(tf.cast(tasks, tf.float32), "tasks")

    def adaptation_returns(self, tasks, steps, seed=0):
        """Mean return of each task after 0, 1, …, `steps` adaptation steps
        (fresh trajectories at each step), reproducible from `seed`.

        Args:
          tasks: `[T, task_dim]` task parameters.
          steps: adaptation steps.
          seed: an int.

        Returns:
          A NumPy array `[T, steps + 1]`.
        """
        arguments.check_int("steps", steps, minimum=0)
        arguments.check_int("seed", seed)
        tasks = self.check_tasks(tasks)
        seeds = tf.random.experimental.stateless_split(
            tf.constant([seed, 7], tf.int64), tf.shape(tasks)[0])
        functions = self.__dict__.setdefault("returns_functions", {})  # not tracked by Keras
        if steps not in functions:
            functions[steps] = tf.function(
                lambda tasks, seeds: self.returns(self.sample(tasks, steps, seeds)))
        sample = functions[steps]
        with episode.assertions_as_python_errors():
            return sample(tasks, seeds).numpy()

    def adapted_policy(self, task, steps=1, seed=0):
        """A copy of the policy (a plain Keras model) adapted to one task by
        `steps` policy-gradient steps on trajectories it samples.

        Args:
          task: the task's parameters `[task_dim]`.
          steps: adaptation steps.
          seed: an int.
        """
        arguments.check_int("steps", steps, minimum=0)
        arguments.check_int("seed", seed)
        task = self.check_tasks(tf.reshape(tf.convert_to_tensor(task, tf.float32), [1, -1]))[0]
        weights, non_trainable = self.functional_policy.initial_weights()
        with episode.assertions_as_python_errors():
            for k in range(steps):
                data = rollout_lib.rollout(self.family, self.policy_fn(weights, non_trainable),
                                           self.distribution, task, self.num_trajectories,
                                           tf.constant([seed, k], tf.int64))
                data["advantages"] = self.task_advantages(data)
                weights = self.inner_update(weights, non_trainable, data)
        clone = keras.models.clone_model(self.policy)
        if not clone.built:
            clone.build((None, self.family.observation_dim))
        for variable, value in zip(clone.trainable_variables, weights):
            variable.assign(value)
        return clone

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit` over a stream of task batches `[T, task_dim]`,
        building the compiled optimizer first (TRPO does not step it, but a
        saved model then reloads its state)."""
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        return super().fit(x, y, *args, **kwargs)

    def get_config(self):
        custom = self.inner_lr is None
        return {
            "name": self.name, "trainable": self.trainable,
            "policy": keras.saving.serialize_keras_object(self.policy),
            "family": keras.saving.serialize_keras_object(self.family),
            "inner_lr": self.inner_lr, "inner_steps": self.inner_steps,
            "eval_inner_steps": self.eval_inner_steps, "num_trajectories": self.num_trajectories,
            "first_order": self.first_order, "estimator": self.estimator, "outer": self.outer,
            "max_kl": self.max_kl, "cg_iterations": self.cg_iterations,
            "cg_damping": self.cg_damping, "backtrack_ratio": self.backtrack_ratio,
            "max_backtracks": self.max_backtracks, "ppo_clip": self.ppo_clip,
            "ppo_epochs": self.ppo_epochs, "discount": self.discount, "baseline": self.baseline,
            "normalize_advantages": self.normalize_advantages, "seed": self.seed,
            "parallel_tasks": self.parallel_tasks,
            "inner_rule": (keras.saving.serialize_keras_object(self.inner_rule) if custom
                           else None),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("policy", "family", "inner_rule"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _phase(data, k):
    return {key: value[k] for key, value in data.items()}


def _flatten(tensors):
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], 0)


def _unflatten(flat, shapes):
    sizes = [int(np.prod(s)) for s in shapes]
    return [tf.reshape(part, s) for part, s in zip(tf.split(flat, sizes), shapes)]
