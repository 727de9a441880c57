#!/usr/bin/env bash
# Quick start: installs what goro needs (Debian 12), builds
# examples/http_server and benchmarks/loadgen, starts the server on a free
# port of 127.0.0.1, puts it under load for about 5 seconds (progress shown
# on a terminal), then prints requests/s, latency percentiles (and a text
# histogram if the terminal is wide enough), the poller backend, and what
# the server's runtime did, as it prints on a graceful shutdown (SIGTERM).
# Exits 0 when the load completed requests and the server shut down with
# exit status 0; 1 otherwise.
#
# Environment (all optional): GORO_DEMO_PRESET (default release; asan for
# a sanitizer smoke run), GORO_DEMO_DURATION (5s), GORO_DEMO_CONNECTIONS
# (50), GORO_POLLER (uring|epoll: the backend of both programs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/deps.sh
goro_require_packages

preset=${GORO_DEMO_PRESET:-release}
duration=${GORO_DEMO_DURATION:-5s}
connections=${GORO_DEMO_CONNECTIONS:-50}
build=build/$preset

cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" --target http_server loadgen

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The server, on a port the kernel picks; its first line says which.
"$build/examples/http_server" 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
address=
for _ in $(seq 300); do  # up to 30 s (a sanitizer build starts slowly)
  address=$(sed -n 's/^http_server: listening on //p' "$work/server.out")
  [[ -n "$address" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [[ -z "$address" ]]; then
  echo "demo: http_server did not start:" >&2
  cat "$work/server.out" "$work/server.err" >&2
  exit 1
fi
echo
echo "== examples/http_server listening on $address; loadgen: $connections connections for $duration"

# 2. The load. Progress goes to standard error (the terminal); the results
# to a file, shown below. A text histogram when the terminal is wide.
columns=$( (tput cols 2>/dev/null || echo 0) | tr -dc 0-9 )
histogram=0
if ((${columns:-0} >= 60)); then histogram=$((columns < 100 ? columns : 100)); fi
loadgen_status=0
"$build/benchmarks/loadgen" --duration "$duration" --connections "$connections" --histogram "$histogram" \
  --json "http://$address/plaintext" >"$work/loadgen.out" || loadgen_status=$?
grep -v '^{' "$work/loadgen.out" || true
requests=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' "$work/loadgen.out")

# 3. Graceful shutdown: SIGTERM, then whatever the server prints on its way
# out (its runtime summary), and its exit status.
kill -TERM "$server_pid"
# A watchdog ends a server that does not exit within 30 s (status 137).
(sleep 30 && kill -KILL "$server_pid") >/dev/null 2>&1 &
watchdog=$!
server_status=0
wait "$server_pid" || server_status=$?
kill "$watchdog" 2>/dev/null || true
server_pid=

echo
echo "== what the server's runtime did (printed by http_server as it shut down)"
sed '1{/^http_server: listening on /d}' "$work/server.out"
cat "$work/server.err" >&2
server_poller=$(sed -n 's/^runtime: poller \([a-z_]*\).*/\1/p' "$work/server.out")
loadgen_poller=$(sed -n 's/.*"poller":"\([a-z_]*\)".*/\1/p' "$work/loadgen.out")
echo "poller backend: server ${server_poller:-(not reported)}, loadgen ${loadgen_poller:-(not reported)}"

failed=0
if [[ "$server_status" == 0 ]]; then
  echo "http_server shut down gracefully (exit status 0)"
elif [[ "$server_status" == 143 ]]; then
  echo "demo: http_server was killed by SIGTERM instead of shutting down gracefully" >&2
  failed=1
elif [[ "$server_status" == 137 ]]; then
  echo "demo: http_server was still running 30 s after SIGTERM and was killed" >&2
  failed=1
else
  echo "demo: http_server ended with status $server_status" >&2
  failed=1
fi
if ((loadgen_status != 0)) || [[ -z "$requests" || "$requests" == 0 ]]; then
  echo "demo: loadgen completed no request (exit status $loadgen_status)" >&2
  failed=1
fi
exit "$failed"
