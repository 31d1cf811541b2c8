#!/usr/bin/env bash
# The whole test suite: builds (via setup.sh), starts the real engines the
# backend tests need (a CQL server for the ScyllaDB store, a Kafka broker for
# the Kafka queue; both stay running for the next run, `scripts/<x>.sh stop`
# stops them), then runs every ctest label.
#   CHATD_TEST_LABELS   limits the labels, e.g. CHATD_TEST_LABELS=unit
#   CHATD_TEST_EXCLUDE  a ctest -E regex of tests to leave out
#   CHATD_TEST_SERVERS=0  do not start the servers (their tests then fail)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${CHATD_BUILD_DIR:-build}"
scripts/setup.sh
if [ "${CHATD_TEST_SERVERS:-1}" != 0 ]; then
  for s in cassandra kafka; do
    [ -x "scripts/$s.sh" ] && "scripts/$s.sh" start
  done
fi
labels="${CHATD_TEST_LABELS:-unit|conformance|integration|e2e}"
exclude=()
[ -n "${CHATD_TEST_EXCLUDE:-}" ] && exclude=(-E "$CHATD_TEST_EXCLUDE")
ctest --test-dir "$build_dir" -L "$labels" "${exclude[@]}" --output-on-failure --timeout 900 -j "${CHATD_TEST_JOBS:-2}"
