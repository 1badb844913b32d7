#!/usr/bin/env bash
# Installs what hylo needs on Debian 12 when it is missing (apt packages and the npm data/test
# packages), then configures and builds. Idempotent; quiet when everything is present.
#   scripts/setup.sh [--build-dir DIR] [--no-build]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build"
do_build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    *) echo "setup.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

apt_packages=(
  g++ cmake make pkg-config git curl
  libcpp-httplib-dev nlohmann-json3-dev libcli11-dev libfmt-dev libyaml-cpp-dev
  libpcre2-dev libutf8proc-dev libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev
  python3 python3-numpy clang-format clang libclang-rt-14-dev libedit-dev chromium fonts-dejavu-core
  nodejs npm
)

missing=()
for p in "${apt_packages[@]}"; do
  # nodejs/npm may come from elsewhere than apt (e.g. a preinstalled Node 20): accept any on PATH.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/hylo-apt.log 2>&1; then
    $sudo apt-get update -q >>/tmp/hylo-apt.log 2>&1 || true
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/hylo-apt.log 2>&1 || {
      echo "setup: apt-get install failed; see /tmp/hylo-apt.log" >&2; tail -20 /tmp/hylo-apt.log >&2; exit 1; }
  fi
fi

# npm packages (tokenizer data for generated models, API clients for the server tests).
npm_dir="$root/deps/npm"
stamp="$npm_dir/node_modules/.hylo-stamp"
if [ ! -f "$stamp" ] || [ "$npm_dir/package-lock.json" -nt "$stamp" ]; then
  echo "setup: installing npm packages in deps/npm"
  (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error >/tmp/hylo-npm.log 2>&1) || {
    echo "setup: npm ci failed; see /tmp/hylo-npm.log" >&2; tail -20 /tmp/hylo-npm.log >&2; exit 1; }
  touch "$stamp"
fi

if [ "$do_build" -eq 1 ]; then
  jobs="$(nproc 2>/dev/null || echo 2)"
  # One log per build directory, so that builds of several checkouts do not mix their logs.
  log_tag="$(printf '%s' "$build_dir" | cksum | cut -d' ' -f1)"
  cmake_log="/tmp/hylo-cmake-$log_tag.log"
  build_log="/tmp/hylo-build-$log_tag.log"
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >"$cmake_log" 2>&1 || {
      cat "$cmake_log" >&2; exit 1; }
  fi
  if ! cmake --build "$build_dir" -j "$jobs" >"$build_log" 2>&1; then
    grep -E "error|Error" "$build_log" | head -40 >&2
    echo "setup: build failed; full log in $build_log" >&2
    exit 1
  fi
fi
