#!/usr/bin/env bash
# Installs everything chatd needs on a fresh Debian 12 machine, then builds it.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl openssl
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  librocksdb-dev libsodium-dev libssl-dev
  libtoml11-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev googletest
  wrk bc clang-format clang-tidy python3 iproute2 gnuplot-nox
  clang-14 libclang-rt-14-dev
  librdkafka-dev kcat openjdk-17-jre-headless maven
  chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The browser client served at "/" (Node.js is needed to build it, not to run chatd).
scripts/build-web.sh

build_type="${CHATD_BUILD_TYPE:-RelWithDebInfo}"
build_dir="${CHATD_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE="$build_type" \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  ${CHATD_CMAKE_ARGS:-}
cmake --build "$build_dir" -j "$(nproc)"
echo "setup: built $build_dir/chatd"
