#!/usr/bin/env bash
# Frame allocator benchmarks (docs/PERFORMANCE.md, "Frame allocator").
#
#   scripts/bench-alloc.sh [ROUNDS]     (default 3)
#
# 1. Builds, with the `release` preset (clang-19 -O2) in build/release:
#    alloc_bench (goro + glibc), alloc_bench_{mimalloc,jemalloc,tcmalloc}
#    (those whose library is installed), alloc_burst, sched_bench, skynet;
#    and the same preset with -DGORO_SYSTEM_FRAME_ALLOCATOR=ON in
#    build/release-sysalloc: sched_bench, skynet, alloc_burst.
# 2. Micro-benchmarks: ROUNDS rounds; in each, every BM_AllocFree and
#    BM_CrossPFree benchmark runs as its own process with
#    --benchmark_repetitions=5 --benchmark_report_aggregates_only=true,
#    the allocators of one size back to back (goro, glibc, mimalloc,
#    jemalloc, tcmalloc, rotated each round), so that every comparison is
#    interleaved in time. A cell is the median over rounds of each run's
#    median; "±x%" is the spread (max - min) of those per-round medians.
#    BM_AllocFree quotes CPU time (one thread; unaffected by preemption),
#    BM_CrossPFree real time (two threads; the pipeline's wall time).
# 3. End to end: examples/skynet from both builds alternately, SKYNET_RUNS
#    (default 5) each, median of their best_ms; then sched_bench
#    --benchmark_filter='SpawnJoin|Skynet' from both builds alternately,
#    ROUNDS times each, 5 repetitions, median of medians.
# 4. alloc_burst (1M live goroutines, then release_memory()) from both
#    builds alternately, 3 times each with the default procs and 3 times
#    with procs=1.
# Prints Markdown tables; raw outputs stay in $RESULTS (default
# build/bench-alloc-results/<UTC time>).
#
# Noise guard (as scripts/bench-sched.sh): before each measurement the
# script waits (up to QUIET_WAIT_S) until the CPUs are idle, and afterwards
# compares the machine's busy time (/proc/stat, steal included) with the
# measured process's own CPU time; a run during which other processes used
# more than 10% of a CPU on average is repeated (up to GUARD_TRIES times;
# the last try is kept and its cell marked "*").
#
# Environment:
#   PARTS          which parts to run, comma-separated (default
#                  micro,e2e,burst).
#   ALLOC_FILTER   regex: only micro-benchmarks whose name matches.
#   SKYNET_RUNS    (default 5), GUARD_TRIES (default 3), QUIET_WAIT_S
#                  (default 60).
#   SKIP_BUILD     set to 1 to use the existing binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-3}"
parts="${PARTS:-micro,e2e,burst}"
skynet_runs="${SKYNET_RUNS:-5}"
guard_tries="${GUARD_TRIES:-3}"
quiet_wait_s="${QUIET_WAIT_S:-60}"
results="${RESULTS:-build/bench-alloc-results/$(date -u +%Y%m%dT%H%M%SZ)}"
hz=$(getconf CLK_TCK)
mkdir -p "$results"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rel=build/release
sys=build/release-sysalloc
allocators=(goro glibc mimalloc jemalloc tcmalloc)

has_part() { [[ ",$parts," == *",$1,"* ]]; }

# --- build ---------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cmake --preset release >/dev/null
  targets=(alloc_bench alloc_burst sched_bench skynet)
  for a in mimalloc jemalloc tcmalloc; do
    if grep -q "^alloc_bench_$a:" <(cmake --build --preset release --target help 2>/dev/null); then
      targets+=("alloc_bench_$a")
    fi
  done
  cmake --build --preset release --target "${targets[@]}"
  # The release preset's settings, plus the system frame allocator.
  cmake --preset release -B "$sys" -DGORO_SYSTEM_FRAME_ALLOCATOR=ON >/dev/null
  cmake --build "$sys" --target sched_bench skynet alloc_burst
fi

# The binary that holds an allocator's benchmarks ('' when not built).
binary_for() {
  local b
  case "$1" in
    goro | glibc) b="$rel/benchmarks/alloc_bench" ;;
    *) b="$rel/benchmarks/alloc_bench_$1" ;;
  esac
  [[ -x "$b" ]] && echo "$b" || true
}

# --- noise guard and median (scripts/lib/noise_guard.sh) --------------------
source scripts/lib/noise_guard.sh


commit=$(git log -1 --format=%h 2>/dev/null || echo unknown)
git diff --quiet HEAD -- include lib 2>/dev/null || commit+=" (+ uncommitted changes in include/ or lib/)"
{
  echo "commit: $commit"
  echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), kernel $(uname -r)"
  echo "date: $(date -u +%F)"
  echo "compiler: $(clang++-19 --version | head -1), release preset (-O2 -g)"
} | tee "$results/context.txt"
echo "results: $results"

# --- micro-benchmarks ------------------------------------------------------------
if has_part micro; then
  names=()
  for n in 64 128 256 512 1024 4096; do names+=("BM_AllocFree/@/$n"); done
  for n in 64 256 1024 4096; do names+=("BM_CrossPFree/@/$n"); done
  for ((r = 1; r <= rounds; ++r)); do
    echo "== micro-benchmarks, round $r of $rounds"
    for pattern in "${names[@]}" BM_CrossPFree/queue_only; do
      # Rotate the allocators' order each round.
      order=()
      for ((i = 0; i < ${#allocators[@]}; ++i)); do order+=("${allocators[(i + r - 1) % ${#allocators[@]}]}"); done
      [[ "$pattern" == *queue_only ]] && order=(goro)
      for a in "${order[@]}"; do
        name="${pattern/@/$a}"
        [[ -n "${ALLOC_FILTER:-}" && ! "$name" =~ $ALLOC_FILTER ]] && continue
        bin=$(binary_for "$a")
        [[ -z "$bin" ]] && continue
        out="$results/micro.r$r.${name//\//_}.json"
        guarded "$out" "$bin" "--benchmark_filter=^${name}(/real_time)?\$" --benchmark_repetitions=5 \
          --benchmark_report_aggregates_only=true --benchmark_format=json
      done
    done
  done
fi

# --- end to end --------------------------------------------------------------------
if has_part e2e; then
  echo "== skynet A/B: goro allocator vs GORO_SYSTEM_FRAME_ALLOCATOR, $skynet_runs runs each (best of 5 trees, ms)"
  for ((i = 1; i <= skynet_runs; ++i)); do
    guarded "$results/skynet.goro.$i.txt" "$rel/examples/skynet"
    guarded "$results/skynet.system.$i.txt" "$sys/examples/skynet"
    echo "run $i: goro $(sed -n 's/.*best_ms=//p' "$results/skynet.goro.$i.txt") ms, system $(sed -n 's/.*best_ms=//p' "$results/skynet.system.$i.txt") ms"
  done
  for ((r = 1; r <= rounds; ++r)); do
    echo "== sched_bench SpawnJoin|Skynet, round $r of $rounds"
    for side in goro system; do
      [[ $side == goro ]] && dir=$rel || dir=$sys
      guarded "$results/sched.$side.r$r.json" "$dir/benchmarks/sched_bench" '--benchmark_filter=SpawnJoin|Skynet' \
        --benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_format=json
    done
  done
fi

# --- burst ---------------------------------------------------------------------------
if has_part burst; then
  echo "== alloc_burst: 1M live goroutines, join, release_memory(); default procs, then procs=1"
  for procs in 0 1; do
    for ((i = 1; i <= 3; ++i)); do
      guarded "$results/burst.goro.p$procs.$i.txt" "$rel/benchmarks/alloc_burst" 1000000 "$procs"
      guarded "$results/burst.system.p$procs.$i.txt" "$sys/benchmarks/alloc_burst" 1000000 "$procs"
      grep -h '^alloc_burst' "$results/burst.goro.p$procs.$i.txt" "$results/burst.system.p$procs.$i.txt"
    done
  done
fi

# --- summary -------------------------------------------------------------------------
echo
python3 - "$results" "$rounds" <<'PY'
import glob, json, os, re, statistics, sys

res, rounds = sys.argv[1], int(sys.argv[2])
ALLOC = ["goro", "glibc", "mimalloc", "jemalloc", "tcmalloc"]


def load_medians(path, field):
    """{run_name: value in ns} for the median aggregates of one JSON file."""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b["time_unit"]]
        out[b["run_name"].replace("/real_time", "").replace("/manual_time", "")] = b[field] * scale
    return out


def cell(values, unit=1.0, digits=2):
    m = statistics.median(values) / unit
    spread = (max(values) - min(values)) / statistics.median(values) * 100 if len(values) > 1 else 0
    return m, f"{m:.{digits}f} (±{spread:.0f}%)"


def collect(prefix, field):
    per = {}
    noisy = set()
    for path in sorted(glob.glob(os.path.join(res, f"micro.r*.{prefix}_*.json"))):
        for name, v in load_medians(path, field).items():
            per.setdefault(name, []).append(v)
            if os.path.exists(path + ".noisy"):
                noisy.add(name)
    return per, noisy


def micro_table(title, prefix, field, sizes, target):
    per, noisy = collect(prefix, field)
    if not per:
        return
    print(f"### {title}\n")
    head = ["bytes"] + [a for a in ALLOC] + ["goro/glibc", "goro/best other", "target met?" if target else ""]
    print("| " + " | ".join(h for h in head if h) + " |")
    print("|" + "---|" * len([h for h in head if h]))
    for n in sizes:
        row, med = [str(n)], {}
        for a in ALLOC:
            name = f"{prefix}/{a}/{n}"
            if name in per:
                med[a], text = cell(per[name])
                row.append(text + ("*" if name in noisy else ""))
            else:
                row.append("n/a")
        others = {a: v for a, v in med.items() if a not in ("goro", "glibc")}
        if "goro" in med and "glibc" in med:
            row.append(f"{med['goro'] / med['glibc']:.2f}")
        else:
            row.append("n/a")
        if "goro" in med and others:
            best = min(others, key=others.get)
            row.append(f"{med['goro'] / others[best]:.2f} ({best})")
        else:
            row.append("n/a")
        if target:
            if "goro" in med and "glibc" in med and others:
                ok1 = med["goro"] <= med["glibc"] / 3
                ok2 = med["goro"] <= min(others.values())
                row.append(("yes" if ok1 else "NO") + " / " + ("yes" if ok2 else "NO"))
            else:
                row.append("n/a")
        print("| " + " | ".join(row) + " |")
    q = per.get(f"{prefix}/queue_only")
    if q:
        print(f"\nqueue only (the ring without allocating): {cell(q)[1]} ns per object")
    print()


micro_table("BM_AllocFree: ns per alloc+free pair (CPU time; median of per-round medians)",
            "BM_AllocFree", "cpu_time", [64, 128, 256, 512, 1024, 4096], True)
print("target columns: goro <= glibc/3 / goro <= best of mimalloc, jemalloc, tcmalloc\n")
micro_table("BM_CrossPFree: ns per object, allocated on one thread and freed on another (real time)",
            "BM_CrossPFree", "real_time", [64, 256, 1024, 4096], False)

# skynet example
sk = {}
for side in ("goro", "system"):
    vals = []
    for path in sorted(glob.glob(os.path.join(res, f"skynet.{side}.*.txt"))):
        m = re.search(r"best_ms=([0-9.]+)", open(path).read())
        if m:
            vals.append(float(m.group(1)))
    if vals:
        sk[side] = vals
if len(sk) == 2:
    g, s = statistics.median(sk["goro"]), statistics.median(sk["system"])
    print("### examples/skynet (1M goroutines, best of 5 trees per run, ms)\n")
    print("| frame allocator | runs (ms) | median ms |")
    print("|---|---|---|")
    print(f"| goro | {', '.join(f'{v:.1f}' for v in sk['goro'])} | {g:.1f} |")
    print(f"| system (malloc) | {', '.join(f'{v:.1f}' for v in sk['system'])} | {s:.1f} |")
    print(f"\ngoro/system = {g / s:.3f}\n")

# sched_bench in both builds: ns per goroutine (the ns_per_* counter)
sb = {}
for side in ("goro", "system"):
    for path in sorted(glob.glob(os.path.join(res, f"sched.{side}.r*.json"))):
        with open(path) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            if b.get("aggregate_name") != "median":
                continue
            per = [v for k, v in b.items() if k.startswith("ns_per_")]
            if not per:
                continue
            name = b["run_name"].replace("/manual_time", "")
            sb.setdefault(name, {}).setdefault(side, []).append((per[0] * 1e9, os.path.exists(path + ".noisy")))
if sb:
    print("### sched_bench SpawnJoin|Skynet: goro allocator vs GORO_SYSTEM_FRAME_ALLOCATOR (ns per goroutine, median of 5 repetitions, median over rounds)\n")
    print("| benchmark | goro allocator | system allocator | goro/system |")
    print("|---|---|---|---|")
    for name in sb:
        if set(sb[name]) != {"goro", "system"}:
            continue
        cells, meds = [], {}
        for side in ("goro", "system"):
            vals = [v for v, _ in sb[name][side]]
            meds[side], text = cell(vals, 1.0, 1)
            cells.append(text + ("*" if any(n for _, n in sb[name][side]) else ""))
        print(f"| {name} | {cells[0]} | {cells[1]} | {meds['goro'] / meds['system']:.3f} |")
    print()

# burst
rows = []
for side in ("goro", "system"):
    for path in sorted(glob.glob(os.path.join(res, f"burst.{side}.*.txt"))):
        for line in open(path):
            if line.startswith("alloc_burst"):
                kv = dict(p.split("=", 1) for p in line.split()[1:])
                rows.append((side, kv))
if rows:
    print("### alloc_burst: RSS (VmRSS after malloc_trim(0), MiB) around 1M live goroutines and release_memory()\n")
    print("| frame allocator | procs | before | peak (all alive) | joined | after release_memory() | after/before |")
    print("|---|---|---|---|---|---|---|")
    for side, kv in rows:
        mib = lambda k: f"{int(kv[k]) / 1024:.1f}"
        print(f"| {side} | {kv['procs']} | {mib('rss_before_kib')} | {mib('rss_peak_kib')} | {mib('rss_joined_kib')} | "
              f"{mib('rss_after_kib')} | {kv['after_over_before']} |")
    print()
print("cells marked * include a run during which other processes used more than 10% of a CPU")
PY
