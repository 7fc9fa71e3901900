#!/usr/bin/env bash
# The test suites of docarray, the framework and the CLIP library (with the
# fuzz corpora replayed) built with AddressSanitizer and
# UndefinedBehaviorSanitizer, in build-asan/. scripts/test.sh (hence CI) runs
# it after the Release suite; it needs the packages of scripts/setup.sh. At
# -O1 -g1 (ASan's usual level; RelWithDebInfo's -O2 -g doubled every compile)
# and without the finetune plugin, measured on 2 cores: build 650-830 s from
# scratch, tests 1.5-4 minutes (a whole fresh-clone CI: 28 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DOCFLOW_ASAN_BUILD_DIR:-build-asan}
if [ ! -f "$dir/build.ninja" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1 -Wno-maybe-uninitialized" -DDOCFLOW_SANITIZE=address,undefined \
    -DDOCFLOW_BUILD_BENCH=OFF
fi
cmake --build "$dir" -j"$(nproc)" --target docarray_tests framework_tests clip_tests \
  $(printf 'fuzz_%s ' binary_docs jsonl_docs flow_file model_files images tokenizer http_requests)
# LibTorch is not instrumented; what it trips is listed with a reason in
# fuzz/ubsan.supp. Leak checking stays on.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$PWD/fuzz/ubsan.supp"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
# The framework suite's runs under a plugin author's environment are left
# out: the same code as the plain runs, under other settings (the Release
# stage runs them).
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" -L 'docarray|framework|clip|fuzz' -E '_with_user_environment$'
