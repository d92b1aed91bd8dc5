#!/usr/bin/env bash
# Lake et al.'s 20-way within-alphabet one-shot error on the Omniglot-minimal
# test alphabets (Sanskrit, Tagalog: 17-way), next to the usual random-character
# tasks, for ProtoNet trained $ITERATIONS steps on the train split with 5-way
# and with 20-way episodes (the latter also with within-alphabet training
# episodes), weight and training seeds $SEEDS (test seed + 1): 1,000 trials and
# 600 usual tasks per run.
#
#     PYTHON=/path/to/python ITERATIONS=500 SEEDS="0 1 2" examples/omniglot_within_alphabet_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
ITERATIONS=${ITERATIONS:-500}
SEEDS=${SEEDS:-"0 1 2"}
for seed in $SEEDS; do
  "$PYTHON" examples/omniglot_metric.py --model=protonet --ways=5 --shots=1 \
    --meta_batch_size=8 --train_query_shots=5 --query_shots=15 \
    --iterations="$ITERATIONS" --test_tasks=600 --within_alphabet_trials=1000 --seed="$seed"
  "$PYTHON" examples/omniglot_metric.py --model=protonet --ways=20 --shots=1 \
    --meta_batch_size=2 --train_query_shots=2 --query_shots=5 \
    --iterations="$ITERATIONS" --test_tasks=600 --within_alphabet_trials=1000 --seed="$seed"
  "$PYTHON" examples/omniglot_metric.py --model=protonet --ways=20 --shots=1 \
    --meta_batch_size=2 --train_query_shots=2 --query_shots=5 --train_within_alphabet \
    --iterations="$ITERATIONS" --test_tasks=600 --within_alphabet_trials=1000 --seed="$seed"
done
