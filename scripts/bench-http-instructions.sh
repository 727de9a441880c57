#!/usr/bin/env bash
# User-space instructions per HTTP request, counted by callgrind: the
# server's own work per request without the kernel's, and without the
# noise of a shared machine (the count repeats to well under 1% between
# runs, where CPU time per request swings by 10-20%).
#
# Runs each server under `valgrind --tool=callgrind` (examples/http_server
# on one P, as a copy without debug information, which valgrind cannot
# read from clang's DWARF 5; nginx with one worker process and no master),
# warms it up with `wrk -t1 -cCONNS -d2s`, zeroes the counters
# (callgrind_control -z), loads it with `wrk -t1 -cCONNS -dSECONDS`, dumps
# the counters (callgrind_control -d) and prints the instructions counted
# over the requests wrk counted. Under callgrind a server runs some 50
# times slower, so wrk's rate is low; the count per request is what
# matters. The kernel's share (system calls, TCP) is not counted.
#
# usage: scripts/bench-http-instructions.sh [ROUNDS] [CONNS] [SECONDS]
#   (default 2 256 5); SERVERS="goro nginx" picks which (both by default);
#   HTTP_SERVER=path measures another build of examples/http_server.
# Needs valgrind, wrk and nginx (the anchors' configuration).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2} conns=${2:-256} seconds=${3:-5}
http_server=${HTTP_SERVER:-build/release/examples/http_server}
nginx_conf=${NGINX_CONF:-../shared/anchors/nginx/nginx.conf}
work=$(mktemp -d)
trap 'pkill -9 -f "callgrind-out-file=$work/" 2>/dev/null || true; rm -rf "$work"' EXIT
cp "$http_server" "$work/http_server"
strip -g "$work/http_server"
port=$((9200 + RANDOM % 500))

# measure NAME COMMAND...: one server under callgrind, one line. COMMAND
# is the server itself (callgrind follows no exec).
measure() {
  local name=$1; shift
  local out="$work/$name.$port.out"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$work/log" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  wrk -t1 -c"$conns" -d2s "http://127.0.0.1:$port/plaintext" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  local requests
  requests=$(wrk -t1 -c"$conns" -d"${seconds}s" "http://127.0.0.1:$port/plaintext" |
    awk '/requests in/ {print $1}')
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local dump instructions
  dump=$(find "$work" -name "$name.$port.out.*" | head -1)
  instructions=$(callgrind_annotate "$dump" 2>/dev/null |
    awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "$name requests=$requests instructions=$instructions" \
    "per_request=$((instructions / requests))"
  port=$((port + 1))
}

for round in $(seq "$rounds"); do
  for server in ${SERVERS:-goro nginx}; do
    case $server in
    goro) GORO_MAXPROCS=1 measure goro "$work/http_server" "127.0.0.1:$port" ;;
    nginx)
      mkdir -p "$work/nginx-$port"
      sed "s/WORKERS/1/; s/PORT/$port/; s/^daemon on;/daemon off; master_process off;/" \
        "$nginx_conf" >"$work/nginx-$port/nginx.conf"
      measure nginx nginx -p "$work/nginx-$port/" -c "$work/nginx-$port/nginx.conf" ;;
    esac
  done
done
