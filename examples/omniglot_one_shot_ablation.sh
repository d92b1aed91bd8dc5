#!/usr/bin/env bash
# One-shot recipe pieces, one at a time, on Lake et al.'s 20-way within-alphabet trials of
# the Omniglot-minimal test alphabets: ProtoNet trained $ITERATIONS steps on 20-way
# within-alphabet episodes (meta-batch 2, 2 queries per class), weight and training seed
# $SEED (test seed + 1), 1,000 trials and 600 usual 20-way tasks per run. The plain run also
# evaluates its embedding with transductive refinement at test only.
#
#     PYTHON=/path/to/python ITERATIONS=500 SEED=0 examples/omniglot_one_shot_ablation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
ITERATIONS=${ITERATIONS:-500}
SEED=${SEED:-0}
run() {
  "$PYTHON" examples/omniglot_metric.py --model=protonet --ways=20 --shots=1 \
    --meta_batch_size=2 --train_query_shots=2 --query_shots=5 --train_within_alphabet \
    --iterations="$ITERATIONS" --test_tasks=600 --within_alphabet_trials=1000 --seed="$SEED" "$@"
}
run --test_refinement_steps=1,3            # plain; refinement at test only
run --learn_scale                          # learned logit scale
run --refinement_steps=1                   # refinement in training and test
run --image_size=56                        # twice the resolution
