# shellcheck shell=bash
# scripts/lib/server_bench.sh: shared by the server benchmark scripts
# (sourced): starting a server and waiting for its port, stopping it, and
# the CPU it spends per unit of work (a message, a request).
#
# The CPU comes from /proc/PID/stat (utime + stime, fields 14 and 15, in
# clock ticks) of the server and its children (nginx's workers), read
# before and after the load; the difference over the units the load
# generator counted is the server's CPU per unit. Reading it from outside
# needs nothing of the server and counts all its threads.

# server_cpu_ticks PID [split]: clock ticks of process PID and its
# children, user + system; with `split`, the two as "USER SYSTEM", read at
# one moment.
server_cpu_ticks() {
  local user=0 system=0 pid u s
  for pid in "$1" $(pgrep -P "$1" || true); do
    read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
    user=$((user + u)) system=$((system + s))
  done
  if [[ ${2:-} == split ]]; then echo "$user $system"; else echo $((user + system)); fi
}

# wait_port PORT: returns once 127.0.0.1:PORT accepts a connection, or
# after 5 s.
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return; fi
    sleep 0.05
  done
}

# start_server PORT COMMAND...: starts COMMAND in the background, its
# output discarded, sets server_pid, and waits for PORT (wait_port).
start_server() {
  local port=$1; shift
  "$@" >/dev/null 2>&1 &
  # shellcheck disable=SC2034  # read by the script that sourced this file
  server_pid=$!
  wait_port "$port"
}

# stop_server PID: ends the server start_server started, and reaps it.
stop_server() { kill "$1"; wait "$1" 2>/dev/null || true; }

# cpu_us_per_unit TICKS UNITS: microseconds of CPU per unit, two decimals,
# for TICKS clock ticks spent on UNITS units.
cpu_us_per_unit() {
  awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }'
}
