#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ in build-fuzz (clang, ASan + UBSan)
# and runs each for CHATD_FUZZ_SECONDS on a copy of its corpus, so a run never
# grows fuzz/corpus. Fails when a target crashes, leaks or times out, and
# names the input that does it. docs/fuzzing.md says more.
#   CHATD_FUZZ_SECONDS   seconds per target (default 20)
#   CHATD_FUZZ_TARGETS   which targets, e.g. "json token" (default: all)
#   CHATD_FUZZ_BUILD_DIR build directory (default build-fuzz)
#   CHATD_FUZZ_CXX       the clang to build with (default clang++-14)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${CHATD_FUZZ_SECONDS:-20}"
build_dir="${CHATD_FUZZ_BUILD_DIR:-build-fuzz}"
read -r -a targets <<<"${CHATD_FUZZ_TARGETS:-json token config http_route gateway chat_frame}"

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="${CHATD_FUZZ_CXX:-clang++-14}" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DCHATD_FUZZ=ON -DCHATD_TESTS=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

runs="$build_dir/fuzz-runs/$(date +%Y%m%d-%H%M%S)"
failed=()
for t in "${targets[@]}"; do
  work="$runs/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp fuzz/corpus/"$t"/* "$work/corpus/"
  args=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 -print_final_stats=1
    -artifact_prefix="$PWD/$work/artifacts/")
  [ -f "fuzz/$t.dict" ] && args+=(-dict="fuzz/$t.dict")
  if "$build_dir/fuzz/fuzz_$t" "${args[@]}" "$work/corpus" >"$work/log" 2>&1; then
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")"
    cov="$(grep -o 'cov: [0-9]*' "$work/log" | tail -1)"
    echo "fuzz: $t ok: ${execs:-?} inputs in ${seconds} s, ${cov:-cov: ?} edges"
  else
    failed+=("$t")
    echo "fuzz: $t FAILED; the end of its log ($work/log):"
    tail -n 60 "$work/log"
    for a in "$work"/artifacts/*; do
      [ -e "$a" ] && echo "fuzz: reproduce with: $build_dir/fuzz/fuzz_$t $a"
    done
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
