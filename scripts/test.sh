#!/usr/bin/env bash
# The whole test suite: builds (via setup.sh) and runs every ctest label.
# CHATD_TEST_LABELS limits it, e.g. CHATD_TEST_LABELS=unit.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${CHATD_BUILD_DIR:-build}"
scripts/setup.sh
labels="${CHATD_TEST_LABELS:-unit|conformance|integration|e2e}"
ctest --test-dir "$build_dir" -L "$labels" --output-on-failure --timeout 900 -j "${CHATD_TEST_JOBS:-2}"
