"""Meta-reinforcement learning: task families, policies as Keras models,
policy-gradient estimators, TRPO, and MAML-RL trained with `fit`.

```python
family = km.rl.Navigation2D()
model = km.rl.MAMLRL(km.rl.mlp_policy(2, 2), family, inner_lr=0.1, num_trajectories=20)
model.compile()
model.fit(family.task_stream(meta_batch_size=20, seed=0), steps_per_epoch=10, epochs=10)
```
"""

from keras_meta.rl import distributions
from keras_meta.rl.returns import advantages, baseline_features, linear_baseline, returns_to_go
from keras_meta.rl.gym_tasks import GymTaskFamily, HalfCheetahDirection, HalfCheetahVelocity
from keras_meta.rl.maml_rl import MAMLRL
from keras_meta.rl.objectives import clipped_surrogate, importance_surrogate, inner_surrogate
from keras_meta.rl.policies import CategoricalPolicy, GaussianPolicy, mlp_policy
from keras_meta.rl.rollout import rollout
from keras_meta.rl.tasks import Navigation2D, TaskFamily, TaskInObservation
from keras_meta.rl.trpo import conjugate_gradient, trpo_step

__all__ = ["MAMLRL", "TaskFamily", "TaskInObservation", "Navigation2D", "GymTaskFamily",
           "HalfCheetahVelocity", "HalfCheetahDirection", "GaussianPolicy", "CategoricalPolicy",
           "mlp_policy", "distributions", "rollout", "returns_to_go", "baseline_features",
           "linear_baseline", "advantages", "inner_surrogate", "importance_surrogate",
           "clipped_surrogate", "conjugate_gradient", "trpo_step"]
