"""Hyperparameter search with KerasTuner (`pip install "keras_meta[tune]"`).

`MetaHyperModel` turns any algorithm of `python -m keras_meta.train` into a
KerasTuner `HyperModel` whose meta-hyperparameters are search spaces
(`keras_meta.tune.spaces`); every KerasTuner tuner (`RandomSearch`,
`BayesianOptimization`, `Hyperband`) searches it. `leaderboard` ranks the
trials with their confidence intervals; `python -m keras_meta.tune` runs a
whole search and writes the leaderboard.
"""

from keras_meta.tune import spaces
from keras_meta.tune.hypermodel import MetaHyperModel
from keras_meta.tune.ranking import Row, leaderboard, plot_against_hyperparameters, write_csv

__all__ = ["MetaHyperModel", "Row", "leaderboard", "plot_against_hyperparameters", "spaces",
           "write_csv"]
