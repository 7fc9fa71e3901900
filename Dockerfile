# docflow's image: what the manifests of `flow export kubernetes|compose`
# run (`flow serve` for executors and the gateway, `flow run` for the ranks
# of a training job). Debian 12, the project's own setup script, the
# installed tree (/usr/local: flow, libdocflow, the built-in plugins).
#
#   docker build -t docflow:latest .
#   docker tag docflow:latest REGISTRY/docflow:1 && docker push REGISTRY/docflow:1
#   flow export kubernetes flows/fashion-search.yml k8s --image REGISTRY/docflow:1
#
# Models, indexes and runs are not in the image: the pods' working
# directory /data is a volume (`--data-claim` for a PersistentVolumeClaim).
FROM debian:12

ENV DEBIAN_FRONTEND=noninteractive
COPY . /src
WORKDIR /src
# The build's own dependencies only (DOCFLOW_SETUP_TESTS=0: no browser, node
# or compose), without tests, benchmarks or fuzzers; the build tree and the
# compiler cache are dropped once installed.
RUN DOCFLOW_SETUP_TESTS=0 DOCFLOW_BUILD_DIR=/tmp/build \
      DOCFLOW_CMAKE_ARGS="-DDOCFLOW_BUILD_TESTS=OFF -DDOCFLOW_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX=/usr/local" \
      scripts/setup.sh \
 && cmake --install /tmp/build \
 && ldconfig \
 && rm -rf /tmp/build /root/.cache /var/lib/apt/lists/* \
 && flow plugins > /dev/null

WORKDIR /data
EXPOSE 8080
CMD ["flow", "--help"]
