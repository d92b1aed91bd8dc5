"""ANIL, "almost no inner loop" (Raghu, Raghu, Bengio & Vinyals, 2020)."""

import keras

from keras_meta.algorithms.maml import MAML


@keras.saving.register_keras_serializable(package="keras_meta")
class ANIL(MAML):
    """ANIL: MAML in which only the head adapts in the inner loop.

    The body's weights stay at θ_body during adaptation and get their
    gradient from the outer loss only (through the head's adaptation, exactly,
    unless `first_order=True`).

    Args:
      learner, inner_lr, inner_steps, eval_inner_steps, first_order: as in `MAML`.
      head: name or list of names of the learner's layers that adapt; None
        (default) is the last layer that has trainable weights.

    Example:

    ```python
    model = km.ANIL(km.learners.conv4(ways=5), inner_lr=0.4, inner_steps=5)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    ```
    """

    def __init__(self, learner, head=None, **kwargs):
        super().__init__(learner, **kwargs)
        self.head = [head] if isinstance(head, str) else (None if head is None else list(head))
        self.head_layers()  # validates `head` now, not at the first call

    def head_layers(self):
        layers = [layer for layer in self.learner.layers if layer.trainable_weights]
        if self.head is None:
            if not layers:
                raise ValueError("`learner` has no layer with trainable weights to adapt.")
            return [layers[-1]]
        names = [layer.name for layer in self.learner.layers]
        unknown = [name for name in self.head if name not in names]
        if unknown or not self.head:
            raise ValueError(f"`head` must name layers of the learner; unknown {unknown}, "
                             f"available {names}.")
        return [self.learner.get_layer(name) for name in self.head]

    def adaptation_mask(self):
        """True for the head's weights: only they adapt."""
        head_paths = {v.path for layer in self.head_layers() for v in layer.trainable_weights}
        return [v.path in head_paths for v in self.learner.trainable_variables]

    def get_config(self):
        return {**super().get_config(), "head": self.head}
