#!/usr/bin/env bash
# Builds the fuzz/ harnesses as libFuzzer binaries with AddressSanitizer and
# UndefinedBehaviorSanitizer (Debian's clang, in build-fuzz/), then runs each
# for SECONDS (default 60) on a copy of its corpus. New inputs the fuzzer
# keeps go to build-fuzz/corpus/NAME; a crash stops with its input saved as
# build-fuzz/crash-NAME-*: add it to fuzz/corpus/NAME/ as a regression input
# once fixed, and CTest replays it on every run.
#
#   scripts/fuzz.sh [SECONDS] [NAME...]
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_PACKAGES=(clang libclang-rt-14-dev)
scripts/install-missing.sh "${FUZZ_PACKAGES[@]}"
scripts/setup.sh >/dev/null  # the project's own packages

seconds=${1:-60}; shift || true
names=("$@"); ((${#names[@]})) || names=(binary_docs jsonl_docs flow_file model_files images tokenizer http_requests)
dir=build-fuzz
if [ ! -f "$dir/build.ninja" ]; then
  # OSS-Fuzz's flags: -O1 with line tables only. RelWithDebInfo (-O2 -g)
  # about doubled every sanitized compile here (scripts/sanitize.sh).
  CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" -DDOCFLOW_FUZZ=ON \
    -DDOCFLOW_SANITIZE=address,undefined -DDOCFLOW_BUILD_TESTS=OFF -DDOCFLOW_BUILD_BENCH=OFF
fi
cmake --build "$dir" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${names[@]}")

# LibTorch's own code trips UBSan in places it does not reach through us;
# fuzz/ubsan.supp names them with a reason each.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$PWD/fuzz/ubsan.supp"
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0"
for name in "${names[@]}"; do
  mkdir -p "$dir/corpus/$name"
  echo "== fuzz_$name for ${seconds}s"
  "$dir/fuzz/fuzz_$name" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    -artifact_prefix="$dir/crash-$name-" -print_final_stats=1 "$dir/corpus/$name" "fuzz/corpus/$name" 2>&1 |
    grep -E "^#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|ERROR|SUMMARY|Test unit written" || true
  ls "$dir"/crash-"$name"-* >/dev/null 2>&1 && { echo "fuzz_$name found a crash: $(ls "$dir"/crash-"$name"-*)"; exit 1; }
done
echo "no finding"
