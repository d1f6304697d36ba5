#!/usr/bin/env bash
# Installs the peer brokers of the benchmark suite (bench/peers/*.ts) from Debian: Redis
# (Streams), NATS server (JetStream) and RabbitMQ (Streams). See /work/shared/PEERS.md.
#
# Idempotent: touches apt only when a package is missing (then runs `apt-get update` once and
# installs the missing ones), without starting any service (policy-rc.d refuses starts during the
# install; the benchmarks start each server themselves on 127.0.0.1 with a fresh directory and
# stop it by PID). Whether or not anything was installed, it then checks every package and every
# binary the benchmarks run, so a half-installed machine fails here rather than in the suite.
# Must run as root (or with sudo available). Exits non-zero on failure.
#
# Usage: bash scripts/install-peers.sh [--help]
set -euo pipefail

# --help: the comment block above is the usage.
if [[ ${1:-} == "--help" || ${1:-} == "-h" ]]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 0
fi

# Debian 12 (bookworm): redis-server 7.0, nats-server 2.9, rabbitmq-server 3.10 (ships the
# rabbitmq_stream plugin).
PACKAGES=(redis-server redis-tools nats-server rabbitmq-server)

log() { printf 'install-peers: %s\n' "$*"; }

# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_require_debian "${PACKAGES[@]}"
apt_find_missing "${PACKAGES[@]}"
missing=("${APT_MISSING[@]}")

# Installs "$@" with apt while a policy-rc.d forbids starting services (exit 101 = action
# forbidden); restores whatever policy was there before, on success or failure.
install_without_starting() {
  local policy=/usr/sbin/policy-rc.d backup=""
  if [[ -e $policy ]]; then
    backup="$(mktemp)"
    "${SUDO[@]}" cp -p "$policy" "$backup"
  fi
  # shellcheck disable=SC2064 # expand now: the trap must restore this call's backup
  trap "restore_policy '$policy' '$backup'" EXIT
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod +x "$policy"

  log "running: apt-get update"
  "${SUDO[@]}" apt-get update -qq
  log "running: apt-get install -y --no-install-recommends $*"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"

  restore_policy "$policy" "$backup"
  trap - EXIT
}

# Puts back the policy-rc.d saved in $2 (or removes $1 when there was none).
restore_policy() {
  if [[ -n $2 ]]; then
    "${SUDO[@]}" cp -p "$2" "$1"
    rm -f "$2"
  else
    "${SUDO[@]}" rm -f "$1"
  fi
}

if ((${#missing[@]} > 0)); then
  apt_sudo
  log "missing: ${missing[*]}"
  install_without_starting "${missing[@]}"
else
  log "all packages present; nothing to install"
fi

# Verify every package and every binary the benchmarks start, whether or not anything was just
# installed: no path returns early on the first package found present.
fail=0
for p in "${PACKAGES[@]}"; do
  if ! apt_installed "$p"; then
    log "error: $p is not installed" >&2
    fail=1
  fi
done
# check NAME COMMAND...: runs COMMAND and logs its first line of output, or an error naming NAME.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    log "ok: $name: ${out%%$'\n'*}"
  else
    log "error: $name does not run ($*): ${out%%$'\n'*}" >&2
    fail=1
  fi
}
check redis-server redis-server --version
check redis-cli redis-cli --version
check nats-server nats-server --version
check rabbitmq-server ls /usr/lib/rabbitmq/bin/rabbitmq-server
# Erlang without distribution: rabbitmqctl would start an epmd daemon listening on every address.
check "erlang (for rabbitmq-server)" erl -noshell -eval 'io:format("OTP ~s~n", [erlang:system_info(otp_release)]), halt().'
check "rabbitmq user" id -u rabbitmq
check "rabbitmq_stream plugin" sh -c 'ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_stream-*'

if ((fail == 0)); then
  log "all peers installed and runnable: ${PACKAGES[*]}"
fi
exit "$fail"
