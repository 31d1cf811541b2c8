#!/usr/bin/env bash
# Format and static checks: clang-format must leave every file as it is, and
# the curated .clang-tidy must report nothing (its warnings are errors).
# Needs a configured build dir for compile_commands.json (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${CHATD_BUILD_DIR:-build}"

mapfile -t sources < <(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'fuzz/*.cpp' 'fuzz/*.h')
echo "lint: clang-format on ${#sources[@]} files"
clang-format --dry-run --Werror "${sources[@]}"

# asio_impl.cpp only instantiates Boost; checking it would check Boost.
mapfile -t units < <(git ls-files 'src/*.cpp' | grep -v 'asio_impl.cpp')
echo "lint: clang-tidy on ${#units[@]} translation units"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! printf '%s\n' "${units[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build_dir" --quiet >"$log" 2>&1; then
  grep -v -E '^[0-9]+ warnings? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter' "$log"
  echo "lint: clang-tidy found problems"
  exit 1
fi
echo "lint: clean"
