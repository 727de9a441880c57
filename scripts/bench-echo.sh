#!/usr/bin/env bash
# Echo server benchmark: examples/echo_server (io_uring, then epoll) and the
# Go anchor go-echo, alternating, under the anchors' echoload. For each run
# prints echoload's line and the server's CPU per message (utime+stime from
# /proc/PID/stat before and after, over the messages echoed), and how much
# of it was user and how much system (kernel) time.
# usage: scripts/bench-echo.sh [ROUNDS] [CONNS] [BYTES] [SECONDS]
#   (default 3 50 64 5). Needs build/release/examples/echo_server and the
#   anchors built into $ANCHORS (default /tmp/goro-anchors; see
#   ../shared/anchors/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} conns=${2:-50} bytes=${3:-64} seconds=${4:-5}
anchors=${ANCHORS:-/tmp/goro-anchors}
echo_server=build/release/examples/echo_server
port=9101
source scripts/lib/server_bench.sh

# run_one NAME COMMAND...: starts the server, loads it, prints a line.
run_one() {
  local name=$1; shift
  start_server "$port" "$@"
  local pid=$server_pid
  local user_before system_before user_after system_after
  read -r user_before system_before < <(server_cpu_ticks "$pid" split)
  local line; line=$("$anchors/echoload" 127.0.0.1 "$port" "$conns" "$bytes" "$seconds")
  read -r user_after system_after < <(server_cpu_ticks "$pid" split)
  stop_server "$pid"
  local rate; rate=$(sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
  local messages; messages=$(awk -v r="$rate" -v s="$seconds" 'BEGIN { printf "%.3f", r * s }')
  local user=$((user_after - user_before)) system=$((system_after - system_before))
  local us; us=$(cpu_us_per_unit $((user + system)) "$messages")
  echo "$name $line server_cpu_us_per_msg=$us" \
    "(user $(cpu_us_per_unit "$user" "$messages"), system $(cpu_us_per_unit "$system" "$messages"))"
  port=$((port + 1))
}

for round in $(seq "$rounds"); do
  echo "# round $round"
  run_one goro-uring env GORO_POLLER=uring "$echo_server" "127.0.0.1:$port"
  run_one goro-epoll env GORO_POLLER=epoll "$echo_server" "127.0.0.1:$port"
  run_one go-echo "$anchors/go-echo" "127.0.0.1:$port"
done
