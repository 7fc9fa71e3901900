#!/usr/bin/env bash
# Installs the benchmarks' peers (benchmark-only: the product never links
# them), builds with scripts/setup.sh, and runs every benchmark in bench/
# with its peer side by side, as bench/RESULTS.md records them. Each
# benchmark prints its own ratio to the peer; the logs land in bench/out/.
#
#   scripts/bench.sh            # all of them (about 25 minutes here)
#   scripts/bench.sh match clip # only those named
#
# It ends with one table of every claim (measure, docflow, peer, ratio,
# goal, met), from the RESULT lines each benchmark prints
# (bench/result_line.hpp), also written to bench/out/table.txt.
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

# `flow` starts itself with OpenBLAS's AVX kernels where OpenBLAS does not know
# the CPU (framework/include/docflow/process_tuning.hpp): the benchmarks and
# their peers (PyTorch, FAISS) get the same kernels, whatever the machine.
# Likewise malloc's huge pages (GLIBC_TUNABLES), which `flow` asks for: the
# peers get them too (PyTorch in Python, which returns its memory to the
# system every step, gains the most from them).
info=$("$BUILD_DIR/framework/flow" info)
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  coretype=$(sed -n 's/^OPENBLAS_CORETYPE: \([A-Za-z0-9]*\)$/\1/p' <<<"$info")
  if [ -n "$coretype" ]; then export OPENBLAS_CORETYPE=$coretype; fi
fi
if [ -z "${GLIBC_TUNABLES:-}" ]; then
  tunables=$(sed -n 's/^GLIBC_TUNABLES: \([a-z0-9._=:]*\)$/\1/p' <<<"$info")
  if [ -n "$tunables" ]; then export GLIBC_TUNABLES=$tunables; fi
fi
echo "bench: OpenBLAS kernels: $(sed -n 's/^blas kernels: //p' <<<"$info"), GLIBC_TUNABLES: ${GLIBC_TUNABLES:-(not set)}"

out=bench/out
mkdir -p "$out"
run() {  # NAME COMMAND...
  local name=$1; shift
  echo "== $name: $*"
  # The previous benchmark's dirty pages (its files, the build's) would be
  # written back 30 s later by a kernel thread, during this one's timed runs,
  # on one of the two cores (a .docs write ratio read 0.48 instead of 0.96
  # after a build; bench/RESULTS.md, 2026-12-07).
  sync
  "$@" 2>&1 | tee "$out/$name.log"
}
set -- "${@:-binary_io match match_stream pipeline clip infer serve search remote shards allreduce distributed distributed_vit}"
for b in $*; do
  case $b in
    binary_io) run binary_io "$BUILD_DIR/bench/bench_binary_io" 100000 512 /tmp ;;
    match) run match "$BUILD_DIR/bench/bench_match" 1000 100000 512 10 ;;
    match_stream) run match_stream "$BUILD_DIR/bench/bench_match_stream" 100 1000000 512 10 4096 /tmp ;;
    pipeline) run pipeline "$BUILD_DIR/bench/bench_pipeline" 200000 64 0 10 ;;
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
    *) echo "bench: unknown benchmark '$b' (known: binary_io match match_stream pipeline clip infer serve search remote shards allreduce distributed distributed_vit)" >&2; exit 2 ;;
  esac
done
# One table of every claim: the RESULT lines the benchmarks printed.
table() {
  awk -F'|' '
    FNR == 1 { bench = FILENAME; sub(".*/", "", bench); sub("[.]log$", "", bench) }
    $1 == "RESULT" {  # decided by the benchmark on the unrounded ratio
      n++; b[n] = bench; m[n] = $2; d[n] = $3; p[n] = $4; r[n] = $5; g[n] = $6; ok[n] = $7
      if (length($2) > wm) wm = length($2); if (length($3) > wd) wd = length($3); if (length($4) > wp) wp = length($4)
    }
    END {
      if (!n) { print "(no RESULT lines in the logs)"; exit }
      fmt = "%-15s %-" wm "s  %-" wd "s  %-" wp "s  %6s  %-8s  %s\n"
      printf fmt, "benchmark", "measure", "docflow", "peer", "ratio", "goal", "met"
      for (i = 1; i <= n; i++) printf fmt, b[i], m[i], d[i], p[i], r[i], g[i], ok[i]
    }' "$@"
}
logs=()
for b in $*; do logs+=("$out/$b.log"); done
echo
table "${logs[@]}" | tee "$out/table.txt"
echo "logs: $out/ (the table: $out/table.txt)"
