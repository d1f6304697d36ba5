#!/usr/bin/env bash
# Installs the Debian packages the tests need: for the interop tests (test/interop) the system
# protoc, the gRPC Python plugin, and Python's grpcio and protobuf for /usr/bin/python3, Go with
# grpc-go and the protoc-gen-go plugins, and g++ with libgrpc++ (the Go and C++ clients); for the
# Kafka listener's tests the real Kafka clients kcat and librdkafka's and kafka-python's Python
# packages; for the console's browser tests chromium.
#
# Idempotent: does nothing (and does not touch apt) when every package is already installed;
# otherwise runs `apt-get update` once and installs the missing ones. Must run as root (or with
# sudo available). Exits non-zero on failure.
#
# Usage: bash scripts/install-test-deps.sh
set -euo pipefail
# --help: the comment block above is the usage.
if [[ ${1:-} == "--help" || ${1:-} == "-h" ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi

# Debian 12 (bookworm) package names: python3-grpcio 1.51, python3-protobuf 3.21,
# protobuf-compiler 3.21 (`protoc`, accepts proto3 `optional`), protobuf-compiler-grpc 1.51
# (`/usr/bin/grpc_python_plugin`). Not python3-grpc-tools: its bundled protoc is 3.5 and rejects
# proto3 `optional`.
# Go (GOPATH mode against /usr/share/gocode): golang-go 1.19, grpc-go 1.33, protobuf-go 1.28 and
# the 1.5 github.com/golang/protobuf that grpc-go imports (named: apt would pick 1.3 otherwise).
# C++: libgrpc++-dev 1.51 (pulls libprotobuf-dev), g++ and pkg-config.
PACKAGES=(python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc
  kcat python3-confluent-kafka python3-kafka chromium
  golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  protoc-gen-go protoc-gen-go-grpc
  libgrpc++-dev g++ pkg-config)

log() { printf 'install-test-deps: %s\n' "$*"; }
# For the CLI's completion test (test/integration/cli-tools.test.ts: zsh -n on `rill completion zsh`).
PACKAGES+=(zsh)
# liblz4 (liblz4.so.1): under Bun the broker decodes LZ4 blocks with it (src/protocol/lz4-liblz4.ts;
# test/unit/protocol/lz4-liblz4.test.ts requires it).
PACKAGES+=(liblz4-1)

# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_require_debian "${PACKAGES[@]}"
apt_find_missing "${PACKAGES[@]}"
missing=("${APT_MISSING[@]}")

if ((${#missing[@]} > 0)); then
  apt_sudo
  log "missing: ${missing[*]}"
  log "running: apt-get update"
  "${SUDO[@]}" apt-get update
  log "running: apt-get install -y --no-install-recommends ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
  log "all packages present; nothing to install"
fi

# Verify what the tests use, so a broken install fails here rather than in the tests.
fail=0
if [[ -x /usr/bin/protoc ]]; then
  log "protoc: $(/usr/bin/protoc --version)"
else
  log "error: /usr/bin/protoc not found after install" >&2
  fail=1
fi
if [[ -x /usr/bin/grpc_python_plugin ]]; then
  log "grpc_python_plugin: /usr/bin/grpc_python_plugin"
else
  log "error: /usr/bin/grpc_python_plugin not found after install" >&2
  fail=1
fi
if versions=$(/usr/bin/python3 -c 'import grpc, google.protobuf; print("grpcio", grpc.__version__, "protobuf", google.protobuf.__version__)' 2>&1); then
  log "/usr/bin/python3: $versions"
else
  log "error: /usr/bin/python3 cannot import grpc and google.protobuf: $versions" >&2
  fail=1
fi
for tool in /usr/bin/go /usr/bin/protoc-gen-go /usr/bin/protoc-gen-go-grpc /usr/bin/grpc_cpp_plugin /usr/bin/g++; do
  if [[ ! -x $tool ]]; then
    log "error: $tool not found after install" >&2
    fail=1
  fi
done
if [[ -x /usr/bin/go ]]; then
  log "go: $(/usr/bin/go version)"
fi
if [[ ! -f /usr/share/gocode/src/google.golang.org/grpc/server.go ]]; then
  log "error: grpc-go sources not found in /usr/share/gocode (golang-google-grpc-dev)" >&2
  fail=1
fi
if versions=$(pkg-config --modversion grpc++ protobuf 2>&1); then
  log "pkg-config grpc++ protobuf: $(echo "$versions" | tr '\n' ' ')"
else
  log "error: pkg-config finds no grpc++/protobuf: $versions" >&2
  fail=1
fi
if [[ -x /usr/bin/kcat ]]; then
  log "kcat: $(/usr/bin/kcat -V 2>&1 | head -1)"
else
  log "error: /usr/bin/kcat not found after install" >&2
  fail=1
fi
if versions=$(/usr/bin/python3 -c 'import confluent_kafka, kafka; print("confluent_kafka", confluent_kafka.version()[0], "librdkafka", confluent_kafka.libversion()[0], "kafka-python", kafka.__version__)' 2>&1); then
  log "/usr/bin/python3: $versions"
else
  log "error: /usr/bin/python3 cannot import confluent_kafka and kafka: $versions" >&2
  fail=1
fi
if [[ -x /usr/bin/chromium ]]; then
  log "chromium: $(/usr/bin/chromium --version 2>/dev/null | tail -1)"
else
  log "error: /usr/bin/chromium not found after install" >&2
  fail=1
fi
exit "$fail"
