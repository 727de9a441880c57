#!/usr/bin/env bash
# Quick start: installs what goro needs (Debian 12), builds the demo with the
# `release` preset and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
goro_require_packages

cmake --preset release
cmake --build --preset release --target demo
./build/release/examples/demo
