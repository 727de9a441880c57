# shellcheck shell=bash
# Sourced by goro's scripts: makes sure the Debian packages goro needs are
# installed. As root it installs what is missing; otherwise it prints the
# command to run and exits 1.

GORO_PACKAGES=(
  cmake ninja-build pkg-config
  clang-19 libclang-rt-19-dev g++
  liburing-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  node-llhttp
)

goro_require_packages() {
  local missing=() pkg
  for pkg in "${GORO_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]]; then
      missing+=("$pkg")
    fi
  done
  ((${#missing[@]} == 0)) && return 0

  if [[ "$(id -u)" == 0 ]]; then
    echo "goro: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "goro: missing Debian packages; run:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}
