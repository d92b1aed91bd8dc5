#!/usr/bin/env bash
# Short-run Omniglot-minimal 5-way 1-shot results of the gradient-based family:
# conv4, meta-batch 4, 5 queries per class, $ITERATIONS meta-iterations (seed 0)
# on the train split, then 600 tasks of the test split (Sanskrit, Tagalog; seed 1).
#
#     PYTHON=/path/to/python ITERATIONS=300 examples/omniglot_gradient_short_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
ITERATIONS=${ITERATIONS:-300}
run() {
  "$PYTHON" examples/omniglot_maml.py --iterations="$ITERATIONS" --meta_batch_size=4 \
    --query_shots=5 --test_tasks=600 --seed=0 "$@"
}
run --algorithm=maml
run --algorithm=fomaml
run --algorithm=reptile --inner_steps=3 --inner_lr=0.2
run --algorithm=meta_sgd
run --algorithm=anil
run --algorithm=maml_plus_plus --inner_steps=2 --eval_inner_steps=2
