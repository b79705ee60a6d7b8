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

bench_init redis-client
start_redis() {  # port
  mkdir -p "$TMP/redis-$1"
  redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis-$1" --daemonize no >"$TMP/redis-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

if [ "${CLUSTER:-0}" = 1 ]; then
  bench_redis_cluster
  PORTS=("${REDIS_CLUSTER_PORTS[@]}")
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
