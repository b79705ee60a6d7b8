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
#   TLS=1 bench/redis-client.sh           (the server's TLS port: rediss:// against redis-benchmark --tls,
#                                          both verifying a certificate made by openssl for the run)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
REQUESTS="${1:-500000}"

source bench/lib.sh
bench_need redis-server:redis-server redis-benchmark:redis-tools pkg-config=hiredis:libhiredis-dev openssl:openssl

bench_build redis-bench
echo "our build: $BUILD_DESCRIPTION"

bench_init redis-client
start_redis() {  # port [redis-server arguments...]
  mkdir -p "$TMP/redis-$1"
  redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis-$1" --daemonize no "${@:2}" >"$TMP/redis-$1.log" 2>&1 &
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
OURS_URL="redis://127.0.0.1:$PORT"
OURS_TLS=()
REDIS_EXTRA=()
THEIRS=(-p "$PORT")
if [ "${TLS:-0}" = 1 ]; then
  # A CA and a server certificate for 127.0.0.1, made for this run; both clients verify it.
  C="$TMP/certs"; mkdir -p "$C"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=bench CA" \
    -keyout "$C/ca.key" -out "$C/ca.crt" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" -keyout "$C/server.key" -out "$C/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$C/server.ext"
  openssl x509 -req -in "$C/server.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -days 1 -extfile "$C/server.ext" \
    -out "$C/server.crt" 2>/dev/null
  TLS_PORT=$(free_port)
  REDIS_EXTRA=(--tls-port "$TLS_PORT" --tls-cert-file "$C/server.crt" --tls-key-file "$C/server.key" --tls-ca-cert-file "$C/ca.crt" --tls-auth-clients no)
  OURS_URL="rediss://127.0.0.1:$TLS_PORT"
  OURS_TLS=(--ca-file "$C/ca.crt")
  THEIRS=(-p "$TLS_PORT" --tls --cacert "$C/ca.crt")
  echo "TLS: both clients on the TLS port $TLS_PORT (TLS 1.3, ECDSA P-256 certificate)"
fi
start_redis "$PORT" "${REDIS_EXTRA[@]}"
redis-cli -p "$PORT" set key:__rand_int__ xxx >/dev/null

printf '%-6s %-9s %14s %14s %7s\n' cmd pipeline "ours ops/s" "redis-bm ops/s" ratio
for P in 1 16; do
  for CMD in get set; do
    ours=$("$BIN" --url "$OURS_URL" "${OURS_TLS[@]}" --connections 50 --pipeline "$P" --requests "$REQUESTS" --command "$CMD" | sed -E 's/^[A-Z]+: ([0-9]+) .*/\1/')
    theirs=$(redis-benchmark "${THEIRS[@]}" -c 50 -P "$P" -n "$REQUESTS" -t "$CMD" -q --csv | tail -1 | cut -d, -f2 | tr -d '"')
    ratio=$(python3 -c "print(f'{$ours/float($theirs):.2f}')")
    printf '%-6s %-9s %14.0f %14.0f %7s\n' "$CMD" "$P" "$ours" "$theirs" "${ratio}x"
  done
done
