#!/usr/bin/env bash
# Installs docflow's build dependencies from Debian 12 packages (idempotent:
# runs `apt-get update` once and installs only what is missing), then
# configures and builds the project in ./build with Ninja.
#
# DOCFLOW_SETUP_TESTS=0 leaves out what only the tests use (the Dockerfile's
# image: chromium, node and its packages, docker-compose); DOCFLOW_CMAKE_ARGS
# are added to the configure step (the image: -DDOCFLOW_BUILD_TESTS=OFF ...).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libboost-dev libboost-graph-dev libboost-program-options-dev
  libboost-test-dev libboost-filesystem-dev libboost-system-dev
  libtorch-dev libopenblas0-pthread libblas-dev
  libyaml-cpp-dev libmsgpack-cxx-dev libzstd-dev zlib1g-dev
  libjpeg62-turbo-dev libpng-dev libicu-dev nlohmann-json3-dev
  libgloo-dev
  dataset-fashion-mnist
)
# The tests': the search page in a real browser; `flow export`'s manifests
# against the Kubernetes API schema (node + tests/export's npm packages) and
# docker-compose's own check of the compose file.
TEST_PACKAGES=(
  chromium
  nodejs docker-compose
)
# Debian's npm, unless a node from elsewhere (NodeSource's carries its own
# npm and conflicts with Debian's) already has one.
command -v npm >/dev/null 2>&1 || TEST_PACKAGES+=(npm)

if [ "${DOCFLOW_SETUP_TESTS:-1}" = 0 ]; then
  scripts/install-missing.sh "${PACKAGES[@]}"
else
  scripts/install-missing.sh "${PACKAGES[@]}" "${TEST_PACKAGES[@]}"
  # npm ci only when the lock file changed since the last install.
  if [ ! tests/export/node_modules/.package-lock.json -nt tests/export/package-lock.json ]; then
    npm ci --prefix tests/export --no-audit --no-fund --loglevel=error
  fi
fi

BUILD_DIR=${DOCFLOW_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  # shellcheck disable=SC2086 # DOCFLOW_CMAKE_ARGS is a list of arguments
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${DOCFLOW_CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j"$(nproc)"
