# Shared by the install scripts: which Debian packages are missing, and how to run apt as root.
# Source it after defining `log`. Debian/Ubuntu only.

# Exits 1 unless dpkg-query and apt-get exist (names what to install by hand).
apt_require_debian() {
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    log "error: dpkg-query/apt-get not found; this script supports Debian/Ubuntu only." >&2
    log "install by hand: $*" >&2
    exit 1
  fi
}

# True when package $1 is installed.
apt_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# Sets APT_MISSING to the packages of "$@" that are not installed; logs the present ones.
apt_find_missing() {
  APT_MISSING=()
  local p
  for p in "$@"; do
    if apt_installed "$p"; then
      log "present: $p ($(dpkg-query -W -f='${Version}' "$p"))"
    else
      APT_MISSING+=("$p")
    fi
  done
}

# Sets SUDO to () as root, (sudo) when available, or exits 1 naming what is missing.
apt_sudo() {
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      SUDO=(sudo)
    else
      log "error: missing ${APT_MISSING[*]}; run as root (or install sudo)." >&2
      exit 1
    fi
  fi
}
