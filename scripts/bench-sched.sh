#!/usr/bin/env bash
# Scheduler benchmarks and the A/B comparison with Go (docs/PERFORMANCE.md).
#
#   scripts/bench-sched.sh [ROUNDS]     (default 5)
#
# 1. Builds sched_bench and skynet with the `release` preset (clang-19 -O2).
# 2. Runs each sched_bench benchmark with 5 repetitions and prints the
#    medians.
# 3. Runs examples/skynet and go-skynet alternately (A B A B ...) ROUNDS
#    times each; each run prints its best of 5 trees. Prints the median of
#    those bests for each side and the ratio goro/Go.
# 4. Measures the peak RSS of one skynet and one go-skynet run
#    (/usr/bin/time -v) and runs go-pingpong once for orientation.
#
# Noise guard: the dev machines are shared. Before each measurement the
# script waits (up to QUIET_WAIT_S) until the CPUs are idle, and after it
# compares the machine's busy time (/proc/stat, steal included) with the
# measured process's own CPU time. A run during which other processes used
# more than 10% of a CPU on average is discarded and repeated (up to
# GUARD_TRIES times; the last try is kept and marked NOISY).
#
# Environment:
#   GORO_ANCHORS      directory with the built Go anchors (default
#                     /tmp/goro-anchors); built with ANCHORS_BUILD when missing.
#   ANCHORS_BUILD     the anchors' build script (default
#                     ../shared/anchors/build.sh, beside the repository).
#   SCHED_BENCH_FILTER  regex of sched_bench benchmarks to run (default all).
#   SKIP_SCHED_BENCH  set to 1 to skip sched_bench.
#   SKIP_AB           set to 1 to skip the skynet A/B, RSS and go-pingpong.
#   SKIP_BUILD        set to 1 to use the existing build/release binaries.
#   GUARD_TRIES       (default 4), QUIET_WAIT_S (default 120).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-5}"
anchors="${GORO_ANCHORS:-/tmp/goro-anchors}"
anchors_build="${ANCHORS_BUILD:-../shared/anchors/build.sh}"
guard_tries="${GUARD_TRIES:-4}"
quiet_wait_s="${QUIET_WAIT_S:-120}"
ncpu=$(nproc)
hz=$(getconf CLK_TCK)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ ! -x "$anchors/go-skynet" || ! -x "$anchors/go-pingpong" ]]; then
  if [[ -x "$anchors_build" ]]; then
    "$anchors_build" "$anchors"
  else
    echo "bench-sched: no Go anchors in $anchors and no $anchors_build; set GORO_ANCHORS" >&2
    exit 1
  fi
fi

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target sched_bench skynet
fi

# --- noise guard and median (scripts/lib/noise_guard.sh) --------------------
source scripts/lib/noise_guard.sh


commit=$(git log -1 --format=%h 2>/dev/null || echo unknown)
git diff --quiet HEAD -- include lib 2>/dev/null || commit+=" (+ uncommitted changes in include/ or lib/)"
echo "== commit $commit"
echo "== machine: $ncpu CPUs, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), kernel $(uname -r), $(date -u +%F)"

# --- sched_bench ---------------------------------------------------------------
if [[ "${SKIP_SCHED_BENCH:-0}" != 1 ]]; then
  echo "== sched_bench: median of 5 repetitions (ns_per_* = manual time / items)"
  bench=./build/release/benchmarks/sched_bench
  while read -r name; do
    [[ -n "${SCHED_BENCH_FILTER:-}" && ! "$name" =~ $SCHED_BENCH_FILTER ]] && continue
    guarded "$tmp/bench" "$bench" "--benchmark_filter=^${name}\$" --benchmark_repetitions=5 \
      --benchmark_report_aggregates_only=true
    awk '/_median / { printf "%-52s %12s %-3s", $1, $2, $3; for (i = 6; i <= NF; ++i) if ($i ~ /^ns_per_/) printf " %s", $i; print "" }
         ' "$tmp/bench"
    if [[ -f "$tmp/bench.noisy" ]]; then echo "  ^ NOISY"; fi
  done < <("$bench" --benchmark_list_tests)
fi

[[ "${SKIP_AB:-0}" == 1 ]] && exit 0

# --- skynet A/B --------------------------------------------------------------
echo "== skynet A/B, $rounds rounds (each value: best of 5 trees, ms)"
goro_ms=() go_ms=()
for ((i = 1; i <= rounds; ++i)); do
  guarded "$tmp/a" ./build/release/examples/skynet
  guarded "$tmp/b" "$anchors/go-skynet"
  a=$(sed -n 's/.*best_ms=//p' "$tmp/a") b=$(sed -n 's/.*best_ms=//p' "$tmp/b")
  goro_ms+=("$a") go_ms+=("$b")
  echo "round $i: goro spawn/join $a ms, go channels $b ms$([[ -f "$tmp/a.noisy" || -f "$tmp/b.noisy" ]] && echo ' (NOISY)')"
done
gm=$(printf '%s\n' "${goro_ms[@]}" | median)
om=$(printf '%s\n' "${go_ms[@]}" | median)
echo "median: goro skynet 1M spawn/join ${gm} ms, go skynet 1M ${om} ms, ratio goro/go $(awk -v a="$gm" -v b="$om" 'BEGIN { printf "%.3f", a / b }')"

# --- memory and orientation --------------------------------------------------
echo "== peak RSS (Maximum resident set size)"
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | sed -n 's/.*Maximum resident set size (kbytes): //p'; }
r1=$(rss ./build/release/examples/skynet 1)
r2=$(rss "$anchors/go-skynet" 1)
echo "goro skynet: ${r1} KiB ($(awk -v k="$r1" 'BEGIN { printf "%.1f", k / 1024 }') MiB); go-skynet: ${r2} KiB ($(awk -v k="$r2" 'BEGIN { printf "%.1f", k / 1024 }') MiB)"

echo "== go-pingpong (orientation only)"
guarded "$tmp/p" "$anchors/go-pingpong"
cat "$tmp/p"
