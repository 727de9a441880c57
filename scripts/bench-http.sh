#!/usr/bin/env bash
# HTTP server benchmark: examples/http_server (io_uring, then epoll), the Go
# anchor go-httphello and nginx with one worker (../shared/anchors/nginx),
# alternating, each under `wrk -t1 -cCONNS -dSECONDS` for "Hello, World!".
# For each run prints wrk's requests/s and latency percentiles, and the
# server's CPU per request (utime+stime from /proc/PID/stat of the server
# and its children, before and after, over the requests wrk counted).
# usage: scripts/bench-http.sh [ROUNDS] [CONNS] [SECONDS]   (default 3 50 5)
#   PIPELINE=N pipelines N requests per write (benchmarks/pipeline.lua).
#   PIN=1 runs every server on CPU 1 and wrk on CPU 0 (taskset), as the
#   issue's figures were taken; goro and Go then size themselves to the one
#   CPU their affinity allows.
#   Needs build/release/examples/http_server, wrk, and the anchors built
#   into $ANCHORS (default /tmp/goro-anchors; see ../shared/anchors/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} conns=${2:-50} seconds=${3:-5} pipeline=${PIPELINE:-1}
server_on=() load_on=()
if [[ ${PIN:-0} == 1 ]]; then server_on=(taskset -c 1) load_on=(taskset -c 0); fi
anchors=${ANCHORS:-/tmp/goro-anchors}
nginx_serve=${NGINX_SERVE:-../shared/anchors/nginx/serve.sh}
http_server=build/release/examples/http_server
port=9310
source scripts/lib/server_bench.sh

# load NAME PID PATH: runs wrk against the server PID serves, prints a line.
load() {
  local name=$1 pid=$2 path=$3
  local before; before=$(server_cpu_ticks "$pid")
  local out
  if ((pipeline > 1)); then
    out=$(PIPELINE_DEPTH=$pipeline "${load_on[@]}" wrk -t1 -c"$conns" -d"${seconds}s" --latency \
      -s benchmarks/pipeline.lua "http://127.0.0.1:$port" -- "$path")
  else
    out=$("${load_on[@]}" wrk -t1 -c"$conns" -d"${seconds}s" --latency "http://127.0.0.1:$port$path")
  fi
  local after; after=$(server_cpu_ticks "$pid")
  local requests; requests=$(awk '/requests in/ {print $1}' <<<"$out")
  local rate; rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local p50; p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  local p99; p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local us; us=$(cpu_us_per_unit $((after - before)) "$requests")
  echo "$name req_per_s=$rate p50=$p50 p99=$p99 server_cpu_us_per_req=$us"
}

# run_one NAME COMMAND...: starts a server on $port, loads it, stops it.
run_one() {
  local name=$1; shift
  start_server "$port" "${server_on[@]}" "$@"
  load "$name" "$server_pid" /plaintext
  stop_server "$server_pid"
  port=$((port + 1))
}

for round in $(seq "$rounds"); do
  echo "# round $round (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  run_one goro-uring env GORO_POLLER=uring "$http_server" "127.0.0.1:$port"
  run_one goro-epoll env GORO_POLLER=epoll "$http_server" "127.0.0.1:$port"
  run_one go-httphello "$anchors/go-httphello" "127.0.0.1:$port"
  master=$("${server_on[@]}" "$nginx_serve" start "$port")
  load nginx-1-worker "$master" /plaintext
  "$nginx_serve" stop "$port"
  port=$((port + 1))
done
