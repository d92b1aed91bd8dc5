#!/usr/bin/env bash
# Short-run Omniglot-minimal 5-way 1-shot results of SNAIL, LEO and MetaLSTM:
# conv4 backbones of 32 channels, meta-batch 4, 5 queries per class,
# $ITERATIONS meta-iterations (seed 0) on the train split with Adam 3e-3, then
# 600 tasks of the test split (Sanskrit, Tagalog; seed 1; 15 queries per class).
# SNAIL uses a smaller sequence model than the paper's (which starts learning later);
# LEO clips its meta-gradient (global norm 1), as its reference implementation does.
#
#     PYTHON=/path/to/python ITERATIONS=1000 examples/omniglot_model_based_short_runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
ITERATIONS=${ITERATIONS:-1000}
run() {
  "$PYTHON" examples/omniglot_model_based.py --iterations="$ITERATIONS" --meta_batch_size=4 \
    --train_query_shots=5 --filters=32 --learning_rate=3e-3 --test_tasks=600 --seed=0 "$@"
}
run --model=snail --snail_filters=32 --snail_attention=16:16,32:32
run --model=leo --inner_steps=5 --global_clipnorm=1.0  # clipped, as LEO's reference
run --model=meta_lstm --inner_steps=5
