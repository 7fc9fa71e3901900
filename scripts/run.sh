#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs docflow's main job. Until
# the fine-tuning flow lands, the main job shows what exists: a document file
# converted to the binary format and back, and summarised.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
FLOW=${DOCFLOW_BUILD_DIR:-build}/framework/flow
mkdir -p runs/demo
$FLOW docs convert examples/data/fashion-sample.jsonl runs/demo/fashion-sample.docs --compress zstd
$FLOW docs show runs/demo/fashion-sample.docs
