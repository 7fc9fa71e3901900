#!/usr/bin/env bash
# Installs the benchmarks' peers (benchmark-only: the product never links
# them), builds with scripts/setup.sh, and runs every benchmark in bench/
# with its peer side by side, as bench/RESULTS.md records them. Each
# benchmark prints its own ratio to the peer; the logs land in bench/out/.
#
#   scripts/bench.sh            # all of them (about 22 minutes here)
#   scripts/bench.sh match clip # only those named
set -euo pipefail
cd "$(dirname "$0")/.."

# The peers. scripts/check-packages.sh reads this list beside setup.sh's.
BENCH_PACKAGES=(
  libfaiss-dev libomp-dev
  python3-torch python3-torchvision python3-pil python3-numpy
  gstreamer1.0-tools gstreamer1.0-plugins-base
  python3-fastapi python3-uvicorn
)

scripts/install-missing.sh "${BENCH_PACKAGES[@]}"
BUILD_DIR=${DOCFLOW_BUILD_DIR:-build}
# A build configured before FAISS was installed skipped bench_match: configure again.
[ -f "$BUILD_DIR/build.ninja" ] && cmake "$BUILD_DIR" >/dev/null
scripts/setup.sh

out=bench/out
mkdir -p "$out"
run() {  # NAME COMMAND...
  local name=$1; shift
  echo "== $name: $*"
  "$@" 2>&1 | tee "$out/$name.log"
}
set -- "${@:-binary_io match pipeline clip infer serve search remote shards allreduce distributed distributed_vit}"
for b in $*; do
  case $b in
    binary_io) run binary_io "$BUILD_DIR/bench/bench_binary_io" 100000 512 /tmp ;;
    match) run match "$BUILD_DIR/bench/bench_match" 1000 100000 512 10 ;;
    pipeline) run pipeline "$BUILD_DIR/bench/bench_pipeline" 200000 64 ;;
    clip) run clip "$BUILD_DIR/bench/bench_clip" step small 256 3 prep 256 kernels ;;
    infer) run infer "$BUILD_DIR/bench/bench_clip" infer small 20 infer openai/clip-vit-base-patch32 2 ;;
    serve) run serve "$BUILD_DIR/bench/bench_serve" "$BUILD_DIR/framework/flow" --seconds 3 ;;
    search) run search "$BUILD_DIR/bench/bench_search" "$BUILD_DIR/framework/flow" \
              ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz --docs 10000 --seconds 3 ;;
    remote) run remote "$BUILD_DIR/bench/bench_remote" "$BUILD_DIR/framework/flow" --seconds 3 ;;
    shards) run shards "$BUILD_DIR/bench/bench_shards" "$BUILD_DIR/framework/flow" --docs 1000000 --seconds 10 --concurrency 1,4 ;;
    allreduce) run allreduce "$BUILD_DIR/bench/bench_allreduce" ;;
    distributed) run distributed bench/bench_distributed.sh "$BUILD_DIR/framework/flow" small ;;
    distributed_vit) run distributed_vit bench/bench_distributed.sh "$BUILD_DIR/framework/flow" vit ;;
    *) echo "bench: unknown benchmark '$b' (known: binary_io match pipeline clip infer serve search remote shards allreduce distributed distributed_vit)" >&2; exit 2 ;;
  esac
done
echo "logs: $out/"
