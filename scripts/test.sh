#!/usr/bin/env bash
# Does what quickstart does (set-up, build, the server on the built-in default model answering one
# OpenAI and one Ollama request), then runs the whole test suite (CTest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/quickstart.sh"
cd "$root/build"
ctest -j "$(nproc 2>/dev/null || echo 2)" --output-on-failure --timeout 1200
