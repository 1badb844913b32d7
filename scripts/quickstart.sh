#!/usr/bin/env bash
# Installs what is missing, builds, and runs hylo on the built-in default model (a random-weight
# Qwen3-Next with the real per-layer shapes, generated on first use): one `hylo run`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
hylo="$root/build/bin/hylo"
"$hylo" run -n 48 "Write a haiku about hybrid attention."
