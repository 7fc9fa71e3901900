#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), runs the whole test suite of the
# Release build, then the sanitizer stage (scripts/sanitize.sh: the docarray,
# framework and CLIP suites and the fuzz replays under AddressSanitizer and
# UndefinedBehaviorSanitizer). DOCFLOW_SKIP_SANITIZE=1 leaves the second
# stage out for a quick local run; CI always runs both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir "${DOCFLOW_BUILD_DIR:-build}" --output-on-failure -j"$(nproc)"
if [ "${DOCFLOW_SKIP_SANITIZE:-0}" != 1 ]; then
  scripts/sanitize.sh
fi
