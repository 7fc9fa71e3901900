#!/usr/bin/env bash
# Installs docflow's build dependencies from Debian 12 packages (idempotent:
# runs `apt-get update` once and installs only what is missing), then
# configures and builds the project in ./build with Ninja.
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
  chromium
)

scripts/install-missing.sh "${PACKAGES[@]}"

BUILD_DIR=${DOCFLOW_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" -j"$(nproc)"
