#!/usr/bin/env bash
# Fork-join benchmark: goro's benchmarks/forkjoin_bench against TooManyCooks
# and libfork on the same shapes (skynet of 100 M leaves, fib(N), nqueens(14)),
# alternating, one process per run. For each run prints one line: the
# runtime, the shape, the time of one tree in ms and the process's peak RSS
# in KiB (/usr/bin/time).
#
# The peers' programs are tzcnt/runtime-benchmarks' (cpp/TooManyCooks,
# cpp/libfork), built from their public repositories into $PEERS (default
# $TMPDIR/goro-peers), outside the tree: nothing of theirs is part of goro.
# They are compiled as that project compiles them (clang, -O3
# -march=native, tcmalloc; TooManyCooks with hwloc and TMC_TRIVIAL_TASK),
# with one change made to the copies: the thread count defaults to every
# core instead of half of them, so that fib (whose argument is n, not the
# thread count) runs on as many threads as goro has Ps. Each peer program
# times its own tree after one warm-up tree; goro's benchmark likewise
# times the tree inside goro::run (start-up and shutdown not counted).
#
# usage: scripts/bench-forkjoin.sh [ROUNDS] [FIB_N...]   (default 3 35 37 39;
#   each FIB_N one of forkjoin_bench's rows, 35 to 39)
#   PEERS              where the peers are cloned and built
#   RUNTIME_BENCHMARKS_GIT, TOOMANYCOOKS_GIT, LIBFORK_GIT
#                      repositories to clone (default: GitHub), e.g. local
#                      mirrors on a machine without network access
#   THREADS            threads / Ps on every side (default: nproc)
# Needs clang++-19, GNU time, libgoogle-perftools-dev and libhwloc-dev (the
# last two installed when run as root), and build/release (scripts/test.sh,
# or cmake --preset release).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
fib_ns=("$@")
if ((${#fib_ns[@]} == 0)); then fib_ns=(35 37 39); fi
peers=${PEERS:-${TMPDIR:-/tmp}/goro-peers}
threads=${THREADS:-$(nproc)}
rb_git=${RUNTIME_BENCHMARKS_GIT:-https://github.com/tzcnt/runtime-benchmarks.git}
tmc_git=${TOOMANYCOOKS_GIT:-https://github.com/tzcnt/TooManyCooks.git}
lf_git=${LIBFORK_GIT:-https://github.com/ConorWilliams/libfork.git}
cxx=${CXX:-clang++-19}

if [[ ! -e /usr/include/hwloc.h || ! -e /usr/lib/x86_64-linux-gnu/libtcmalloc.so ]]; then
  if ((EUID == 0)); then
    apt-get install -y -q libgoogle-perftools-dev libhwloc-dev >/dev/null
  else
    echo "bench-forkjoin: needs libgoogle-perftools-dev and libhwloc-dev" >&2
    exit 1
  fi
fi

# clone_once DIR URL: a shallow clone of URL's default branch into DIR.
clone_once() {
  if [[ ! -d $1/.git ]]; then git clone -q --depth 1 "$2" "$1"; fi
}
mkdir -p "$peers"
clone_once "$peers/runtime-benchmarks" "$rb_git"
clone_once "$peers/TooManyCooks" "$tmc_git"
clone_once "$peers/libfork" "$lf_git"

# build_peer NAME DIR LIBS FLAGS...: compiles the peer's skynet, fib and
# nqueens into $peers/bin/NAME-<shape>, from copies whose default thread
# count is every core; LIBS (one word, may be empty) is linked besides
# tcmalloc.
build_peer() {
  local name=$1 dir=$2 libs=$3 shape
  shift 3
  mkdir -p "$peers/bin" "$peers/src/$name"
  for shape in skynet fib nqueens; do
    local out=$peers/bin/$name-$shape
    [[ -x $out ]] && continue
    sed 's|hardware_concurrency() / 2|hardware_concurrency()|' \
      "$peers/runtime-benchmarks/cpp/$dir/$shape.cpp" >"$peers/src/$name/$shape.cpp"
    # shellcheck disable=SC2086 # libs: zero or one word
    "$cxx" -O3 -march=native -DNDEBUG "$@" -I"$peers/runtime-benchmarks/cpp/2common" \
      "$peers/src/$name/$shape.cpp" -o "$out" $libs -ltcmalloc -lpthread
  done
}
# TooManyCooks' own preset flags; libfork's benchmarks use C++23's
# multidimensional subscript (lf::fork[&x, fn](n)).
build_peer tmc TooManyCooks -lhwloc -std=c++20 -DTMC_PRIORITY_COUNT=1 -DTMC_TRIVIAL_TASK \
  -DTMC_USE_HWLOC -I"$peers/TooManyCooks/include"
build_peer libfork libfork "" -std=c++23 -I"$peers/libfork/include"

cmake --build build/release --target forkjoin_bench >/dev/null
goro_bench=build/release/benchmarks/forkjoin_bench

# max_rss_kib COMMAND...: runs COMMAND with its stdout to $tmp/out and
# prints its peak resident set in KiB.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
max_rss_kib() {
  /usr/bin/time -f %M -o "$tmp/rss" "$@" >"$tmp/out"
  cat "$tmp/rss"
}

# peer NAME SHAPE ARG LABEL: one run of a peer program (it times its tree
# after a warm-up tree); prints the line, naming the tree LABEL.
peer() {
  local rss us
  rss=$(max_rss_kib "$peers/bin/$1-$2" "$3")
  us=$(sed -n 's/.*duration: \([0-9]*\) us.*/\1/p' "$tmp/out" | tail -1)
  awk -v n="$1" -v s="$4" -v us="$us" -v rss="$rss" \
    'BEGIN { printf "%s %s ms=%.1f max_rss_kib=%s\n", n, s, us / 1000, rss }'
}

# goro SHAPE FILTER: one process of forkjoin_bench running benchmark FILTER
# twice, one tree each time; the second tree is the figure (the first is
# the warm-up, as the peers' is).
goro() {
  local rss
  rss=$(max_rss_kib env GORO_MAXPROCS="$threads" "$goro_bench" --benchmark_filter="$2" \
    --benchmark_min_time=0 --benchmark_repetitions=2 --benchmark_format=json)
  python3 - "$1" "$rss" "$tmp/out" <<'EOF'
import json, sys
shape, rss, path = sys.argv[1], sys.argv[2], sys.argv[3]
runs = [b for b in json.load(open(path))["benchmarks"] if b.get("run_type") == "iteration"]
print(f"goro {shape} ms={runs[-1]['real_time']:.1f} max_rss_kib={rss}")
EOF
}

echo "# threads / Ps: $threads; $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  echo "# round $round (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  peer tmc skynet "$threads" skynet100M
  peer libfork skynet "$threads" skynet100M
  goro skynet100M '^BM_ForkJoinSkynet/depth:8/'
  for n in "${fib_ns[@]}"; do
    peer tmc fib "$n" "fib$n"
    peer libfork fib "$n" "fib$n"
    goro "fib$n" "^BM_ForkJoinFib/n:$n/"
  done
  peer tmc nqueens "$threads" nqueens14
  peer libfork nqueens "$threads" nqueens14
  goro nqueens14 '^BM_ForkJoinNQueens/'
done
