"""Meta-SGD (Li, Zhou, Chen & Li, 2017)."""

import keras

from keras_meta import arguments, update_rules
from keras_meta.algorithms.maml import MAML


@keras.saving.register_keras_serializable(package="keras_meta")
class MetaSGD(MAML):
    """Meta-SGD: MAML with a learned inner learning rate per parameter element.

    The inner update is `φ = θ − α ⊙ ∇L_support(θ)` where `α` has the shape of
    the learner's trainable weights (`inner_rates`, one variable per weight,
    initialised to `inner_lr_init`) and is meta-trained with θ by the
    compiled optimizer: `MAML` with the rule `update_rules.LearnedRates`.
    Second order by default; `first_order=True` treats the inner gradients
    as constants (α still gets its gradient through the update).

    Args:
      learner, inner_steps, eval_inner_steps, first_order: as in `MAML`.
      inner_lr_init: initial value of every learned rate.

    Example:

    ```python
    model = km.MetaSGD(km.learners.mlp(), inner_lr_init=0.01, inner_steps=1)
    model.compile(optimizer="adam", loss="mse")
    ```
    """

    def __init__(self, learner, inner_lr_init=0.01, **kwargs):
        arguments.reject("MetaSGD", kwargs, {
            "inner_lr": "its learned rates start at `inner_lr_init`.",
            "inner_rule": "its rule is its learned rates; use `km.MAML(learner, inner_rule=...)` "
                          "for another rule."})
        super().__init__(learner, inner_rule=update_rules.LearnedRates(inner_lr_init), **kwargs)
        self.inner_lr_init = float(inner_lr_init)

    @property
    def inner_rates(self):
        """The learned rates α, one variable per learner weight (after `build`)."""
        return self.inner_rule.rates

    def get_config(self):
        config = super().get_config()
        del config["inner_lr"], config["inner_rule"]
        return {**config, "inner_lr_init": self.inner_lr_init}
