#!/usr/bin/env bash
# Builds the `fuzz` preset (clang-19, libFuzzer, ASan + UBSan) and runs
# http_request_fuzzer for SECONDS seconds (default 60) over a copy of the
# seed corpus (tests/fuzz/corpus/http_request), which stays untouched.
# Fails on any crash, sanitizer report, leak, timeout or out-of-memory;
# the input that caused it is left in the work directory it prints (or in
# $FUZZ_WORK_DIR when set, kept afterwards).
#
#   scripts/fuzz-http.sh            # 60 s
#   scripts/fuzz-http.sh 600        # ten minutes
#   FUZZ_JOBS=2 scripts/fuzz-http.sh 300   # two fuzzing processes at once
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
goro_require_packages

seconds=${1:-60}
jobs=${FUZZ_JOBS:-1}

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

work=${FUZZ_WORK_DIR:-}
if [[ -z "$work" ]]; then
  work=$(mktemp -d -t goro-fuzz-http.XXXXXX)
  keep_work=0
else
  mkdir -p "$work"
  keep_work=1
fi
mkdir -p "$work/corpus" "$work/artifacts"
cp tests/fuzz/corpus/http_request/* "$work/corpus/"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
root=$(pwd)
args=(-max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048
  -dict="$root/tests/fuzz/http.dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1)
if ((jobs > 1)); then
  args+=(-jobs="$jobs" -workers="$jobs")
fi
# From the work directory: with -jobs, libFuzzer writes its logs (fuzz-N.log)
# where it runs.
(cd "$work" && "$root/build/fuzz/tests/fuzz/http_request_fuzzer" "${args[@]}" corpus) || status=$?

if ((status != 0)) || [[ -n "$(ls -A "$work/artifacts")" ]]; then
  echo "fuzz-http: the fuzzer failed (exit status $status); inputs in $work/artifacts:" >&2
  ls -l "$work/artifacts" >&2
  exit 1
fi
if ((keep_work == 0)); then rm -rf "$work"; fi
echo "fuzz-http: no failure in ${seconds} s"
