#!/usr/bin/env bash
# Installs what is missing, builds, runs the built-in default model once (as quickstart does),
# then the whole test suite (CTest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/build/bin/hylo" run -n 16 "Write a haiku about hybrid attention."
cd "$root/build"
ctest -j "$(nproc 2>/dev/null || echo 2)" --output-on-failure --timeout 1200
