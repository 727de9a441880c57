# scripts/lib/noise_guard.sh: shared by the benchmark scripts (sourced).
#
# The machines are shared: a measurement taken while another process ran is
# worth little. `guarded OUT CMD...` waits until the CPUs are quiet, runs CMD
# (stdout to OUT) under /usr/bin/time, compares the machine's busy time
# (/proc/stat, steal included) with CMD's own CPU time, and repeats the run
# when other processes used more than 10% of a CPU, up to $guard_tries
# times; the last try is kept and OUT.noisy written (holding that share).
#
# The caller sets: guard_tries, quiet_wait_s, hz (getconf CLK_TCK), tmp (a
# scratch folder).

# Busy jiffies of all CPUs (everything but idle and iowait; steal counts as busy).
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# Waits until the machine has been idle (< 5% of one CPU busy) for 1 s.
wait_quiet() {
  local waited=0 b0 b1
  while ((waited < quiet_wait_s)); do
    b0=$(busy_jiffies); sleep 1; b1=$(busy_jiffies)
    if (((b1 - b0) * 100 < 5 * hz)); then return 0; fi
    waited=$((waited + 1))
  done
  echo "  (machine still busy after ${quiet_wait_s}s; measuring anyway)" >&2
}

# guarded OUT CMD...: runs CMD with stdout to OUT; repeats it when other
# processes used more than 10% of a CPU meanwhile; the last try is kept and
# OUT.noisy written. Without /usr/bin/time (Debian package `time`), runs
# CMD once, unguarded.
guarded() {
  local out="$1" try b0 b1 wall user sys_s other_pct
  shift
  rm -f "$out.noisy"
  if [[ ! -x /usr/bin/time ]]; then
    "$@" >"$out"
    return
  fi
  for ((try = 1; try <= guard_tries; ++try)); do
    wait_quiet
    b0=$(busy_jiffies)
    if ! /usr/bin/time -f '%e %U %S' -o "$tmp/time" "$@" >"$out" 2>"$tmp/stderr"; then
      cat "$tmp/stderr" >&2
      echo "$(basename "$0"): '$*' failed" >&2
      exit 1
    fi
    b1=$(busy_jiffies)
    read -r wall user sys_s <"$tmp/time"
    other_pct=$(awk -v b="$((b1 - b0))" -v hz="$hz" -v w="$wall" -v u="$user" -v s="$sys_s" \
      'BEGIN { o = b / hz - u - s; if (o < 0) o = 0; printf "%d", (w > 0 ? 100 * o / w : 0) }')
    if ((other_pct <= 10)); then return 0; fi
    if ((try < guard_tries)); then
      echo "  (discarded a run of '$(basename "$1") ${2:-}': others used ${other_pct}% of a CPU)" >&2
    else
      echo "  NOISY: kept the last run of '$(basename "$1") ${2:-}' (others used ${other_pct}% of a CPU)" >&2
      echo "$other_pct" >"$out.noisy"
    fi
  done
}

# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
