#!/usr/bin/env bash
# User-space instructions per request: ours and the peer side by side, each under valgrind's callgrind,
# in one run on loopback, with the ratio. Unlike req/s on a shared 2-core VM (where a proxy's figure moves
# 20-30% between rounds), an instruction count is the same from run to run to within a fraction of a
# percent, so it shows what a code change did to the CPU work per request. It does not show kernel time,
# cycles per instruction (atomic reference counting costs more cycles than most instructions) or
# wake-ups: the req/s benchmarks (bench/engine.sh, bench/balancer.sh) remain the measure of the goals.
#
#   case          client (h2load, N requests after N to warm up)   ours                     peer
#   engine-h1     --h1 -c50 GET /keyless/                          gateway-engine, 1 loop   NGINX proxy_pass, 1 worker
#   balancer-h1   --h1 -c50 GET /x                                 edge-balancer, 1 loop    HAProxy, nbthread 1
#   balancer-h2c  -c10 -m10 GET /x (prior knowledge)               edge-balancer, 1 loop    HAProxy, nbthread 1
#
# Everything listens on 127.0.0.1 on free ports: a throwaway redis-server, one backend NGINX answering a
# fixed 100-byte body (not under callgrind), the peer configs of bench/engine.sh (NGINX) and
# bench/balancer/haproxy.cfg.tmpl (HAProxy, both of its servers pointing at the one backend).
# Binaries are the deployed build (bench/lib.sh), copied without their DWARF 5 debug sections, which
# Debian 12's valgrind cannot read (symbols stay).
#
#   bench/instructions.sh                  (N=20000, all cases)
#   N=50000 CASES="balancer-h1" bench/instructions.sh
#
# Needs (installed with apt-get when missing): valgrind, nginx, haproxy, h2load, redis-server, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export PATH="/opt/swift/usr/bin:$PATH"
N="${N:-20000}"
CASES="${CASES:-engine-h1 balancer-h1 balancer-h2c}"

source "$ROOT/bench/lib.sh"
bench_need valgrind:valgrind nginx:nginx haproxy:haproxy h2load:nghttp2-client redis-server:redis-server curl:curl

bench_build gateway-engine
ENGINE_BUILT="$BIN"
bench_build edge-balancer
BALANCER_BUILT="$BIN"
bench_init instructions
objcopy --strip-debug "$ENGINE_BUILT" "$TMP/gateway-engine"
objcopy --strip-debug "$BALANCER_BUILT" "$TMP/edge-balancer"

BODY="$(printf 'ok%098d' 0)"
HEALTH_PATH="/__gateway/health"
USER_LINE=""; [ "$(id -u)" -eq 0 ] && USER_LINE="user root;"
REDIS_PORT=$(free_port); BACKEND_PORT=$(free_port); OURS_PORT=$(free_port); OURS_ADMIN=$(free_port); PEER_PORT=$(free_port)
ADMIN_TOKEN="bench-admin-token-$(date +%s)-$$"

mkdir -p "$TMP/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis" >"$TMP/redis.log" 2>&1 &
PIDS+=($!)

mkdir -p "$TMP/backend"
nginx_head() {  # dir error-log-level: one process (no master, so callgrind follows the worker), the http block left open
  cat <<EOF
$USER_LINE
worker_processes 1; daemon off; master_process off; pid $1/nginx.pid; error_log $1/error.log $2;
events { worker_connections 4096; multi_accept on; }
http { access_log off; client_body_temp_path $1/cb; proxy_temp_path $1/pt; fastcgi_temp_path $1/ft;
  uwsgi_temp_path $1/ut; scgi_temp_path $1/st; keepalive_requests 1000000; keepalive_timeout 120s;
EOF
}

{ nginx_head "$TMP/backend" error; cat <<EOF; } >"$TMP/backend/nginx.conf"
  server { listen 127.0.0.1:$BACKEND_PORT backlog=4096; default_type text/plain;
    location = $HEALTH_PATH { return 200 "ok\n"; } location / { return 200 "$BODY"; } } }
EOF
nginx -p "$TMP/backend" -c "$TMP/backend/nginx.conf" >"$TMP/backend/stdout.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$BACKEND_PORT/" 200 "$TMP/backend/error.log"

cat >"$TMP/apis.yaml" <<EOF
apis:
  - {id: bench-keyless, name: Bench keyless, listen_path: /keyless, strip_listen_path: true,
     targets: [{url: "http://127.0.0.1:$BACKEND_PORT"}], auth: {mode: keyless}}
EOF

write_peer_nginx() {  # the peer NGINX of bench/engine.sh, one process (no master) so callgrind follows the worker
  mkdir -p "$TMP/peer"
  { nginx_head "$TMP/peer" warn; cat <<EOF; } >"$TMP/peer/nginx.conf"
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; keepalive_requests 10000; }
  server { listen 127.0.0.1:$PEER_PORT backlog=4096;
    proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$proxy_host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto \$scheme;
    proxy_set_header X-Forwarded-Host \$host; proxy_set_header X-Request-ID \$request_id;
    add_header X-Request-ID \$request_id always;
    location /keyless/ { proxy_pass http://backend/; } } }
EOF
}

fill_haproxy() {  # port mode (h1 or h2c)
  local proto=""; [ "$2" = h2c ] && proto=" proto h2"
  sed -e "s|@THREADS@|1|g" -e "s|@PORT_B1@|$BACKEND_PORT|g" -e "s|@PORT_B2@|$BACKEND_PORT|g" -e "s|@HEALTH_PATH@|$HEALTH_PATH|g" -e "s|@SERVER_SSL@||g" \
    "$ROOT/bench/balancer/haproxy.cfg.tmpl" |
    awk -v port="$1" -v proto="$proto" '
      /^[a-z]/ { skip = ($1 == "frontend" && $2 != "fe_h1") }
      skip { next }
      /^ *bind / { print "    bind 127.0.0.1:" port proto; next }
      { print }' >"$TMP/haproxy.cfg"
}

# One event loop for ours (NIO's singleton group reads this; the others ignore it). Exported, not set
# with env(1): valgrind does not follow an exec into another program.
export NIO_SINGLETON_GROUP_LOOP_COUNT=1
CG_PID=""
start_cg() {  # name url command...: the command under callgrind; waits until url answers
  local name="$1" url="$2"
  shift 2
  rm -f "$TMP/$name.cg"*
  valgrind --tool=callgrind --callgrind-out-file="$TMP/$name.cg" --dump-instr=no --collect-jumps=no "$@" >"$TMP/$name.log" 2>&1 &
  CG_PID=$!
  PIDS+=($CG_PID)
  # Up to a minute: startup under callgrind is slow. READY_CURL: curl options for the readiness check.
  for _ in $(seq 300); do curl -sf -o /dev/null --max-time 1 ${READY_CURL:-} "$url" && break; sleep 0.2; done
  curl -sf -o /dev/null --max-time 5 ${READY_CURL:-} "$url" || { echo "$name never answered $url" >&2; tail -20 "$TMP/$name.log" >&2; exit 1; }
}

measure() {  # name url h2load-options...: prints instructions per request (N requests after N to warm up)
  local name="$1" url="$2" out done
  shift 2
  h2load "$@" -n "$N" "$url" >/dev/null 2>&1
  callgrind_control -z "$CG_PID" >/dev/null 2>&1
  out=$(h2load "$@" -n "$N" "$url" 2>&1)
  callgrind_control -d "$CG_PID" >/dev/null 2>&1
  done=$(echo "$out" | awk '/^requests:/ {print $8}')
  [ "$done" = "$N" ] || { echo "$name: $done of $N requests succeeded" >&2; echo "$out" | tail -5 >&2; exit 1; }
  local dump=""
  for _ in $(seq 100); do
    dump=$(ls "$TMP/$name.cg".* 2>/dev/null | head -1 || true)
    [ -n "$dump" ] && grep -q '^summary:' "$dump" && break
    sleep 0.1
  done
  stop "$CG_PID"
  [ -n "$dump" ] || { echo "$name: callgrind wrote no dump" >&2; exit 1; }
  awk -v n="$N" '/^summary:/ {printf "%.0f\n", $2 / n}' "$dump"
}

printf '%-14s %14s %14s %8s\n' case ours peer ratio
for case in $CASES; do
  OURS_PORT=$(free_port); OURS_ADMIN=$(free_port); PEER_PORT=$(free_port)  # fresh ports: nothing waits for the last case's to be released
  case $case in
    engine-h1)
      start_cg ours "http://127.0.0.1:$OURS_PORT/keyless/" "$TMP/gateway-engine" \
        --set "redis.url=redis://127.0.0.1:$REDIS_PORT" --set "admin.token=$ADMIN_TOKEN" --set "admin.port=$OURS_ADMIN" \
        --set listen.host=127.0.0.1 --set "listen.port=$OURS_PORT" --set "apis.seedFile=$TMP/apis.yaml" --set apis.seedMode=overwrite \
        --set log.access=false --set log.level=warning --set eventLoops=0
      ours=$(measure ours "http://127.0.0.1:$OURS_PORT/keyless/" --h1 -c50)
      write_peer_nginx
      start_cg peer "http://127.0.0.1:$PEER_PORT/keyless/" nginx -p "$TMP/peer" -c "$TMP/peer/nginx.conf"
      peer=$(measure peer "http://127.0.0.1:$PEER_PORT/keyless/" --h1 -c50)
      ;;
    balancer-h1 | balancer-h2c)
      mode=${case#balancer-}
      opts=(--h1 -c50); READY_CURL=""
      if [ "$mode" = h2c ]; then opts=(-c10 -m10); READY_CURL="--http2-prior-knowledge"; fi
      start_cg ours "http://127.0.0.1:$OURS_PORT/x" "$TMP/edge-balancer" \
        --set "admin.token=$ADMIN_TOKEN" --set "admin.port=$OURS_ADMIN" --set listen.host=127.0.0.1 --set "listen.port=$OURS_PORT" \
        --set discovery.redis=false --set "nodes.static=id=b1,host=127.0.0.1,port=$BACKEND_PORT" --set policy=round_robin \
        --set "health.path=$HEALTH_PATH" --set log.level=warning --set accessLog.level=off
      ours=$(measure ours "http://127.0.0.1:$OURS_PORT/x" "${opts[@]}")
      fill_haproxy "$PEER_PORT" "$mode"
      start_cg peer "http://127.0.0.1:$PEER_PORT/x" haproxy -db -f "$TMP/haproxy.cfg"
      peer=$(measure peer "http://127.0.0.1:$PEER_PORT/x" "${opts[@]}")
      ;;
    *) echo "unknown case $case (engine-h1, balancer-h1, balancer-h2c)" >&2; exit 2 ;;
  esac
  printf '%-14s %14s %14s %7.2fx\n' "$case" "$ours" "$peer" "$(echo "$ours / $peer" | bc -l)"
done
echo "user-space instructions per request under callgrind (ratio: ours / peer, lower is better); $N requests after $N to warm up; build: $BUILD_DESCRIPTION"
