#!/usr/bin/env bash
# Data-parallel training on this machine: one process using every core
# against N ranks (`flow run --nproc-per-node N`) with cores/N threads each,
# the same flow, the same global batch. Prints the trainer's examples/s
# (training time only: the epoch's batches, not the evaluations), the
# ratio, and the gradient allreduce time per step.
#
#   bench/bench_distributed.sh FLOW_EXE [small|vit] [RANKS]
#   KEEP_WORK=DIR keeps the runs (logs, run folders) in DIR.
set -euo pipefail
flow=$1
what=${2:-small}
ranks=${3:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
vocab=$root/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz
work=${KEEP_WORK:-$(mktemp -d)}
[ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
case $what in
  small) sets="--set reader.batch_size=256 --set reader.limit=5120 --set image_encoder.model=small --set text_encoder.model=small" ;;
  vit) sets="--set reader.batch_size=32 --set reader.limit=160 --set reader.image_size=224 --set image_encoder.model=ViT-B/32 --set text_encoder.model=ViT-B/32" ;;
  *) echo "small or vit" >&2; exit 2 ;;
esac
common="--set with.workspace=$work/runs --set with.checkpoints=0 --set reader.epochs=1 --set evaluator.limit=32
        --set evaluator.image_size=$([ "$what" = vit ] && echo 224 || echo 32) --set checkpointer.monitor=train_loss
        --set tokenize.vocab=$vocab --set evaluator.vocab=$vocab --set checkpointer.vocab=$vocab $sets"
rate() {  # RUN: the trainer's examples/s for epoch 1
  grep -o 'epoch 1 done: .*' "$work/runs/$1/run.log" | sed 's/.*, \([0-9.]*\) examples\/s.*/\1/'
}
sync  # earlier files (a build, a benchmark) written back now, not during the runs
echo "== $what: one process, $(nproc) threads"
"$flow" run "$root/flows/clip-fashion.yml" --name one $common > "$work/one.log" 2>&1 || { cat "$work/one.log"; exit 1; }
one=$(rate one)
grep -o 'epoch 1 done: .*' "$work/runs/one/run.log"
echo "one process: $one examples/s"
sync  # the first run's files written back before the second, not during it
echo "== $what: $ranks ranks, $(( $(nproc) / ranks )) thread(s) each"
"$flow" run "$root/flows/clip-fashion.yml" --name ranks --nproc-per-node "$ranks" $common > "$work/ranks.log" 2>&1 || { cat "$work/ranks.log"; exit 1; }
many=$(rate ranks)
grep -o 'epoch 1 done: .*' "$work/runs/ranks/run.log"
echo "$ranks ranks: $many examples/s"
awk -v a="$many" -v b="$one" 'BEGIN { printf "ratio ranks / one process: %.3f (goal >= 0.95)\n", a / b }'
awk -v a="$many" -v b="$one" -v r="$ranks" -v w="$what" \
  'BEGIN { printf "RESULT|distributed training, %s, %d ranks on one machine|%.1f examples/s|one process %.1f examples/s|%.2f|>= 0.95|%s\n", w, r, a, b, a / b, (a / b >= 0.95 ? "met" : "NOT MET") }'
