#!/usr/bin/env bash
# Installs the peer brokers of the benchmark suite (bench/peers/*.ts) from Debian: Redis
# (Streams), NATS server (JetStream) and RabbitMQ (Streams). See /work/shared/PEERS.md.
#
# Idempotent: does nothing (and does not touch apt) when every package is already installed;
# otherwise runs `apt-get update` once and installs the missing ones, without starting any
# service (policy-rc.d refuses starts during the install; the benchmarks start each server
# themselves on 127.0.0.1 with a fresh directory and stop it by PID). Must run as root.
# Exits non-zero on failure.
set -euo pipefail

# Debian 12 (bookworm): redis-server 7.0, nats-server 2.9, rabbitmq-server 3.10 (ships the
# rabbitmq_stream plugin).
PACKAGES=(redis-server redis-tools nats-server rabbitmq-server)

log() { printf 'install-peers: %s\n' "$*"; }

# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_require_debian "${PACKAGES[@]}"
apt_find_missing "${PACKAGES[@]}"
missing=("${APT_MISSING[@]}")
if [ ${#missing[@]} -eq 0 ]; then
  log "all peers installed"
  exit 0
fi

apt_sudo
fi

# Keep apt from starting the services it installs (exit 101 = action forbidden), and restore
# whatever policy was there before.
POLICY=/usr/sbin/policy-rc.d
backup=""
if [ -e "$POLICY" ]; then backup="$(mktemp)"; "${SUDO[@]}" cp -p "$POLICY" "$backup"; fi
restore() {
  if [ -n "$backup" ]; then "${SUDO[@]}" cp -p "$backup" "$POLICY"; rm -f "$backup"; else "${SUDO[@]}" rm -f "$POLICY"; fi
}
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
"${SUDO[@]}" chmod +x "$POLICY"

log "installing: ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || { log "error: $p did not install" >&2; exit 1; }
done
log "installed: ${missing[*]}"
