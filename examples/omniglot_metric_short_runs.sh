#!/usr/bin/env bash
# Short-run Omniglot-minimal results of the metric learners and the baselines:
# each model trained for $ITERATIONS steps (seed 0) on the train split, then
# tested on 600 tasks of the test split (Sanskrit, Tagalog; seed 1),
# 5-way 1-shot (15 queries per class) and 20-way 1-shot (5 queries per class).
#
#     PYTHON=/path/to/python ITERATIONS=500 examples/omniglot_metric_short_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
ITERATIONS=${ITERATIONS:-500}
MODELS=${MODELS:-"protonet matching matching_fce relation finetune finetune_cosine multitask"}
for model in $MODELS; do
  "$PYTHON" examples/omniglot_metric.py --model="$model" --ways=5 --shots=1 \
    --meta_batch_size=8 --train_query_shots=5 --query_shots=15 \
    --iterations="$ITERATIONS" --test_tasks=600 --seed=0
  "$PYTHON" examples/omniglot_metric.py --model="$model" --ways=20 --shots=1 \
    --meta_batch_size=2 --train_query_shots=2 --query_shots=5 \
    --iterations="$ITERATIONS" --test_tasks=600 --seed=0
done
