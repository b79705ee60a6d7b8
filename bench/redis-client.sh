#!/usr/bin/env bash
# Our Redis client vs redis-benchmark against the same local redis-server, in one run:
# GET and SET, 50 connections, pipeline 1 and 16. Prints ops/s of each and the ratio.
#
#   bench/redis-client.sh [requests]      (default 500000 per case)
#   STDLIB=dynamic bench/redis-client.sh  (Swift runtime linked dynamically; by default statically, as
#                                          scripts/install.sh builds the services)
#   EXCLUSIVITY=checked bench/redis-client.sh  (keep the run-time exclusivity checks, which
#                                          scripts/install.sh leaves out)
#   CLUSTER=1 bench/redis-client.sh       (a three-master Redis Cluster on loopback instead of one server:
#                                          our cluster RedisClient, random keys over 100,000, against
#                                          redis-benchmark --cluster -r 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
REQUESTS="${1:-500000}"

source bench/lib.sh
bench_need redis-server:redis-server redis-benchmark:redis-tools pkg-config=hiredis:libhiredis-dev

bench_build redis-bench
echo "our build: $BUILD_DESCRIPTION"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$DIR"' EXIT
start_redis() {  # port, more redis-server arguments...
  local port=$1; shift
  mkdir -p "$DIR/$port"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR/$port" --daemonize no "$@" >"$DIR/$port/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

if [ "${CLUSTER:-0}" = 1 ]; then
  # Three masters, slots split evenly, each cluster bus on a free port of its own.
  PORTS=()
  for i in 0 1 2; do
    p=$(free_port); bus=$(free_port)
    start_redis "$p" --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$bus"
    PORTS+=("$p"); BUS+=("$bus")
  done
  redis-cli -p "${PORTS[0]}" cluster addslotsrange 0 5460 >/dev/null
  redis-cli -p "${PORTS[1]}" cluster addslotsrange 5461 10922 >/dev/null
  redis-cli -p "${PORTS[2]}" cluster addslotsrange 10923 16383 >/dev/null
  redis-cli -p "${PORTS[0]}" cluster meet 127.0.0.1 "${PORTS[1]}" "${BUS[1]}" >/dev/null
  redis-cli -p "${PORTS[0]}" cluster meet 127.0.0.1 "${PORTS[2]}" "${BUS[2]}" >/dev/null
  for _ in $(seq 200); do
    ok=1
    for p in "${PORTS[@]}"; do
      info=$(redis-cli -p "$p" cluster info)
      grep -q 'cluster_state:ok' <<<"$info" && grep -q 'cluster_known_nodes:3' <<<"$info" || ok=0
    done
    [ $ok = 1 ] && break; sleep 0.1
  done
  [ $ok = 1 ] || { echo "the Redis Cluster did not form" >&2; exit 1; }
  PORT=${PORTS[0]}
  echo "Redis Cluster: 3 masters on 127.0.0.1:${PORTS[*]}; random keys over 100,000"
  printf '%-6s %-9s %14s %14s %7s\n' cmd pipeline "ours ops/s" "redis-bm ops/s" ratio
  for P in 1 16; do
    for CMD in get set; do
      ours=$("$BIN" --cluster --url "redis://127.0.0.1:$PORT" --connections 50 --pipeline "$P" --requests "$REQUESTS" --command "$CMD" --keyspace 100000 | sed -E 's/^[A-Z]+: ([0-9]+) .*/\1/')
      theirs=$(redis-benchmark --cluster -p "$PORT" -c 50 -P "$P" -n "$REQUESTS" -r 100000 -t "$CMD" -q --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
      ratio=$(python3 -c "print(f'{$ours/float($theirs):.2f}')")
      printf '%-6s %-9s %14.0f %14.0f %7s\n' "$CMD" "$P" "$ours" "$theirs" "${ratio}x"
    done
  done
  exit 0
fi

PORT=$(free_port)
start_redis "$PORT"
redis-cli -p "$PORT" set key:__rand_int__ xxx >/dev/null

printf '%-6s %-9s %14s %14s %7s\n' cmd pipeline "ours ops/s" "redis-bm ops/s" ratio
for P in 1 16; do
  for CMD in get set; do
    ours=$("$BIN" --url "redis://127.0.0.1:$PORT" --connections 50 --pipeline "$P" --requests "$REQUESTS" --command "$CMD" | sed -E 's/^[A-Z]+: ([0-9]+) .*/\1/')
    theirs=$(redis-benchmark -p "$PORT" -c 50 -P "$P" -n "$REQUESTS" -t "$CMD" -q --csv | tail -1 | cut -d, -f2 | tr -d '"')
    ratio=$(python3 -c "print(f'{$ours/float($theirs):.2f}')")
    printf '%-6s %-9s %14.0f %14.0f %7s\n' "$CMD" "$P" "$ours" "$theirs" "${ratio}x"
  done
done
