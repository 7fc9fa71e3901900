#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs docflow's main job: CLIP
# fine-tuned on Fashion-MNIST for text-to-image search, evaluated before and
# after, with the best model kept as a Hugging Face artifact.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
FLOW=${DOCFLOW_BUILD_DIR:-build}/framework/flow
NAME=clip-fashion-$(date -u +%Y%m%d-%H%M%S)
$FLOW run flows/clip-fashion.yml --name "$NAME" "$@"
echo
echo "run folder: runs/$NAME (report.md, metrics.jsonl, steps.jsonl, artifact/)"
echo
echo "search the test images with the fine-tuned model:"
echo "  $FLOW run flows/fashion-index.yml --set CONTEXT.RUN=$NAME"
echo "  $FLOW serve flows/fashion-search.yml --set CONTEXT.RUN=$NAME --port 8080"
echo "  then open http://127.0.0.1:8080/ui"
