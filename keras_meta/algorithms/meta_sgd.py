"""Meta-SGD (Li, Zhou, Chen & Li, 2017)."""

import keras
import numpy as np

from keras_meta.algorithms.maml import MAML


@keras.saving.register_keras_serializable(package="keras_meta")
class MetaSGD(MAML):
    """Meta-SGD: MAML with a learned inner learning rate per parameter element.

    The inner update is `φ = θ − α ⊙ ∇L_support(θ)` where `α` has the shape of
    the learner's trainable weights (`inner_rates`, one variable per weight,
    initialised to `inner_lr_init`) and is meta-trained with θ by the
    compiled optimizer. Second order by default; `first_order=True` treats
    the inner gradients as constants (α still gets its gradient through the
    update).

    Args:
      learner, inner_steps, eval_inner_steps, first_order: as in `MAML`.
      inner_lr_init: initial value of every learned rate.
    """

    def __init__(self, learner, inner_lr_init=0.01, **kwargs):
        kwargs.pop("inner_lr", None)
        super().__init__(learner, inner_lr=inner_lr_init, **kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        self.inner_rates = [
            self.add_weight(
                shape=v.shape, name=f"inner_rate_{i}", dtype=v.dtype,
                # A NumPy value keeps float64 rates exact (a Python float would pass through float32).
                initializer=keras.initializers.Constant(np.asarray(self.inner_lr, v.dtype)))
            for i, v in enumerate(self.learner.trainable_variables)
        ]

    def inner_update(self):
        rates = [r.value for r in self.inner_rates]

        def update(weights, grads, step):
            del step
            return [w if g is None else w - r * g for w, r, g in zip(weights, rates, grads)]

        return update

    def get_config(self):
        config = super().get_config()
        config["inner_lr_init"] = config.pop("inner_lr")
        return config
