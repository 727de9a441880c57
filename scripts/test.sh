#!/usr/bin/env bash
# Installs what goro needs (Debian 12), then builds and runs every test with
# the `release` preset.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
goro_require_packages

cmake --preset release && cmake --build --preset release && ctest --preset release
