#!/usr/bin/env bash
# gateway-engine vs NGINX as reverse proxies in front of the same backend, in one run, with wrk:
#
#   case        ours (gateway-engine)                      NGINX
#   keyless     keyless API -> backend                     proxy_pass (upstream keepalive)
#   api-key     API key + Redis rate limit (Lua, each      the same keyless proxy_pass location
#               request) -> backend                        (NGINX has no equivalent; labelled so)
#   cache-hit   cache-enabled API, every request a HIT     proxy_cache, every request a HIT
#
# Everything listens on 127.0.0.1 on free ports: a throwaway redis-server, a backend NGINX answering a
# fixed 100-byte body, our engine (release build) and the peer NGINX. Both proxies get the same number
# of event-loop threads (engine: N loops, see start_engine; NGINX: worker_processes N); access logs are
# off on both (log.access=false, access_log off). Each case: a warm-up run, then a measured run, alternating ours and NGINX.
# Every process started here is stopped by the EXIT trap; every load run is bounded by wrk -d.
# The goal lines judge the ratios taken within each round (bench/paired.py): "met" only when the interval
# around their median lies above 1.0, "level" when it spans 1.0 (5 or 7 rounds: ours ahead in every round).
#
#   bench/engine.sh                      threads "1 2", 10 s per measured run, 50 connections, 1 round
#   THREADS="1" DURATION=10s CONNECTIONS=50 WARMUP=3s ROUNDS=3 bench/engine.sh   (ROUNDS: medians)
#   ENGINE_BIN=path/to/gateway-engine bench/engine.sh   (skip the build; only for trying the script)
#   STDLIB=dynamic bench/engine.sh                      (link the Swift runtime dynamically; by default the
#                                                        build is the one scripts/install.sh deploys:
#                                                        release, --static-swift-stdlib, run-time
#                                                        exclusivity checks off)
#   EXCLUSIVITY=checked bench/engine.sh                 (keep the run-time exclusivity checks)
#   ENGINE_GROUP=own bench/engine.sh                    (engine eventLoops=N + the default singleton group; see start_engine)
#   PERF_DIR=/tmp/perf bench/engine.sh                  (also `perf record -g` our engine in each measured run)
#   CASES="keyless cache-hit" bench/engine.sh           (only some cases: for quick comparisons)
#   REDIS_CLUSTER=1 CASES=api-key bench/engine.sh       (Redis: a three-master Redis Cluster, not one server)
#   CASES=https bench/engine.sh                         (also: an https:// backend — the backend NGINX's TLS
#                                                        listener, a certificate made for the run; our engine
#                                                        with backends.caFile, NGINX with proxy_ssl_verify;
#                                                        both keep TLS connections alive)
#
# Needs: nginx, wrk, redis-server, redis-cli, libhiredis-dev (installed with apt-get when missing), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export PATH="/opt/swift/usr/bin:$PATH"

THREADS="${THREADS:-1 2}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
CONNECTIONS="${CONNECTIONS:-50}"
WRK_THREADS="${WRK_THREADS:-1}"
ROUNDS="${ROUNDS:-1}"
CASES="${CASES:-keyless api-key cache-hit}"

# --- tools -----------------------------------------------------------------------------------------
source "$ROOT/bench/lib.sh"
bench_need nginx:nginx wrk:wrk redis-server:redis-server redis-cli:redis-tools pkg-config=hiredis:libhiredis-dev curl:curl openssl:openssl
NGINX="$(command -v nginx)"

# --- build (bench/lib.sh) -------------------------------------------------------------------------
if [ -n "${ENGINE_BIN:-}" ]; then
  ENGINE="$ENGINE_BIN"  # a prebuilt binary (for trying the script); the figures need the deployed build
  BUILD_DESCRIPTION="prebuilt $ENGINE"
  [ -x "$ENGINE" ] || { echo "no binary at $ENGINE" >&2; exit 1; }
else
  bench_build gateway-engine
  ENGINE="$BIN"
fi

# --- processes and cleanup (bench/lib.sh) ----------------------------------------------------------
bench_init engine

REDIS_PORT=$(free_port)
BACKEND_PORT=$(free_port)
BACKEND_TLS_PORT=$(free_port)
ENGINE_PORT=$(free_port)
ADMIN_PORT=$(free_port)
NGINX_PORT=$(free_port)
ADMIN_TOKEN="bench-admin-token-$(date +%s)-$$"
# A fixed 100-byte body.
BODY="$(printf 'ok%098d' 0)"

# --- redis -----------------------------------------------------------------------------------------
# REDIS_CLUSTER=1: a three-master Redis Cluster instead of one server (the engine with redis.cluster).
REDIS_SETTINGS=()
if [ "${REDIS_CLUSTER:-0}" = 1 ]; then
  bench_redis_cluster
  REDIS_PORT=${REDIS_CLUSTER_PORTS[0]}
  REDIS_SETTINGS=(--set redis.cluster=true --set "redis.clusterSeeds=127.0.0.1:${REDIS_CLUSTER_PORTS[1]},127.0.0.1:${REDIS_CLUSTER_PORTS[2]}")
else
  mkdir -p "$TMP/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis" --daemonize no \
    >"$TMP/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
fi
redis-cli -p "$REDIS_PORT" ping >/dev/null

# --- nginx (backend and peer proxy) ------------------------------------------------------------------
USER_LINE=""; [ "$(id -u)" -eq 0 ] && USER_LINE="user root;"
nginx_common() {  # prefix workers
  cat <<EOF
$USER_LINE
worker_processes $2;
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; multi_accept on; }
EOF
}
nginx_temp_paths() {  # prefix
  cat <<EOF
  client_body_temp_path $1/client_body;
  proxy_temp_path $1/proxy_temp;
  fastcgi_temp_path $1/fastcgi_temp;
  uwsgi_temp_path $1/uwsgi_temp;
  scgi_temp_path $1/scgi_temp;
EOF
}

# A CA and a certificate for the backend's TLS listener (localhost and 127.0.0.1), made for the run.
CERTS="$TMP/certs"
mkdir -p "$CERTS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=bench CA" \
  -keyout "$CERTS/ca.key" -out "$CERTS/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
  -keyout "$CERTS/backend.key" -out "$CERTS/backend.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$CERTS/backend.ext"
openssl x509 -req -in "$CERTS/backend.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" -CAcreateserial -days 1 \
  -extfile "$CERTS/backend.ext" -out "$CERTS/backend.crt" 2>/dev/null

start_backend() {
  local dir="$TMP/backend"
  mkdir -p "$dir"
  {
    nginx_common "$dir" 1
    cat <<EOF
http {
  access_log off;
$(nginx_temp_paths "$dir")
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$BACKEND_PORT reuseport backlog=4096;
    listen 127.0.0.1:$BACKEND_TLS_PORT ssl reuseport backlog=4096;
    ssl_certificate $CERTS/backend.crt;
    ssl_certificate_key $CERTS/backend.key;
    default_type text/plain;
    location / { return 200 "$BODY"; }
  }
}
EOF
  } >"$dir/nginx.conf"
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$BACKEND_PORT/" 200 "$dir/error.log"
}

NGINX_PID=""
start_peer_nginx() {  # workers
  local dir="$TMP/peer-$1"
  mkdir -p "$dir/cache"
  {
    nginx_common "$dir" "$1"
    cat <<EOF
http {
  access_log off;
$(nginx_temp_paths "$dir")
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  upstream backend {
    server 127.0.0.1:$BACKEND_PORT;
    keepalive 64;
    keepalive_requests 10000;
  }
  upstream backend_tls {
    server 127.0.0.1:$BACKEND_TLS_PORT;
    keepalive 64;
    keepalive_requests 10000;
  }
  proxy_cache_path $dir/cache levels=1:2 keys_zone=bench:10m max_size=64m inactive=10m use_temp_path=off;
  server {
    listen 127.0.0.1:$NGINX_PORT reuseport backlog=4096;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$proxy_host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme;
    proxy_set_header X-Forwarded-Host \$host;
    proxy_set_header X-Request-ID \$request_id;
    add_header X-Request-ID \$request_id always;
    location /keyless/ { proxy_pass http://backend/; }
    location /https/ {
      proxy_pass https://backend_tls/;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $CERTS/ca.crt;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
    location /cached/ {
      proxy_cache bench;
      proxy_cache_valid 200 1m;
      add_header X-Request-ID \$request_id always;
      add_header X-Cache \$upstream_cache_status always;
      proxy_pass http://backend/;
    }
  }
}
EOF
  } >"$dir/nginx.conf"
  "$NGINX" -t -q -p "$dir" -c "$dir/nginx.conf"
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  NGINX_PID=$!
  PIDS+=($NGINX_PID)
  wait_http "http://127.0.0.1:$NGINX_PORT/keyless/" 200 "$dir/error.log"
}

# --- our engine --------------------------------------------------------------------------------------
cat >"$TMP/apis.yaml" <<EOF
apis:
  - id: bench-keyless
    name: Bench keyless
    listen_path: /keyless
    strip_listen_path: true
    targets: [{url: "http://127.0.0.1:$BACKEND_PORT"}]
    auth: {mode: keyless}
  - id: bench-keyed
    name: Bench API key + rate limit
    listen_path: /keyed
    strip_listen_path: true
    targets: [{url: "http://127.0.0.1:$BACKEND_PORT"}]
    auth: {mode: api_key}
    rate_limit: {rate: 10000000, period_seconds: 1, burst: 10000000, fail_mode: closed}
  - id: bench-cached
    name: Bench cached
    listen_path: /cached
    strip_listen_path: true
    targets: [{url: "http://127.0.0.1:$BACKEND_PORT"}]
    auth: {mode: keyless}
    cache: {enabled: true, ttl_seconds: 60}
  - id: bench-https
    name: Bench https backend
    listen_path: /https
    strip_listen_path: true
    targets: [{url: "https://localhost:$BACKEND_TLS_PORT"}]
    auth: {mode: keyless}
EOF

# Threads: by default the engine runs everything NIO does (data listener and its Redis client) on
# NIO's singleton group with N loops (eventLoops=0 + NIO_SINGLETON_GROUP_LOOP_COUNT=N), so it has N
# event-loop threads in all, like NGINX's N workers. ENGINE_GROUP=own uses eventLoops=N instead: N loops
# for the data listener plus the singleton group (one loop per core) for the Redis client.
ENGINE_GROUP="${ENGINE_GROUP:-singleton}"
ENGINE_PID=""
start_engine() {  # event loops
  local loops="$1" singleton="$1"
  if [ "$ENGINE_GROUP" = singleton ]; then loops=0; else singleton="$(nproc)"; fi
  NIO_SINGLETON_GROUP_LOOP_COUNT="$singleton" "$ENGINE" \
    --set "redis.url=redis://127.0.0.1:$REDIS_PORT" "${REDIS_SETTINGS[@]}" \
    --set "admin.token=$ADMIN_TOKEN" \
    --set "admin.port=$ADMIN_PORT" \
    --set "listen.host=127.0.0.1" \
    --set "listen.port=$ENGINE_PORT" \
    --set "apis.seedFile=$TMP/apis.yaml" \
    --set "apis.seedMode=overwrite" \
    --set "log.access=false" \
    --set "log.level=warning" \
    --set "eventLoops=$loops" \
    --set "backends.caFile=$CERTS/ca.crt" \
    >"$TMP/engine-$1.log" 2>&1 &
  ENGINE_PID=$!
  PIDS+=($ENGINE_PID)
  wait_http "http://127.0.0.1:$ADMIN_PORT/ready" 200 "$TMP/engine-$1.log"
  wait_http "http://127.0.0.1:$ENGINE_PORT/keyless/" 200 "$TMP/engine-$1.log"
}

API_KEY=""
make_key() {
  [ -n "$API_KEY" ] && return 0  # keys live in Redis; one serves every engine run
  API_KEY=$(curl -sf --max-time 5 -X POST "http://127.0.0.1:$ADMIN_PORT/keys" \
    -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' -d '{"name":"bench"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  [ -n "$API_KEY" ]
}

# Checks a URL answers 200 with the backend's body (and, for cache URLs, that the second answer is a HIT).
check() {  # url want_cache_hit [header]
  local url="$1" hit="$2" hdr="${3:-X-Bench: 1}" out
  out=$(curl -s -D - --max-time 5 -H "$hdr" "$url" -o "$TMP/check.body")
  echo "$out" | head -1 | grep -q " 200" || { echo "check failed: $url: $(echo "$out" | head -1)" >&2; cat "$TMP/check.body" >&2; exit 1; }
  cmp -s <(printf '%s' "$BODY") "$TMP/check.body" || { echo "check failed: $url: unexpected body" >&2; exit 1; }
  if [ "$hit" = yes ]; then
    out=$(curl -s -D - --max-time 5 -o /dev/null "$url")
    echo "$out" | grep -qi '^x-cache: *hit' || { echo "check failed: $url: second request not a cache HIT" >&2; echo "$out" >&2; exit 1; }
  fi
}

# --- wrk -------------------------------------------------------------------------------------------

# Prints "req_per_s p99_ms errors cpu_us_per_request" for one measured run (after a warm-up run).
# With PERF_DIR set, the measured runs of our engine are also recorded with `perf record -g`.
run_wrk() {  # label pid url header warm-up(yes/no)
  local label="$1" pid="$2" url="$3" hdr="$4" out before after perf_pid=""
  if [ "$5" = yes ]; then wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "$hdr" "$url" >/dev/null 2>&1 || true; fi
  out="$TMP/wrk-$label.txt"
  if [ -n "${PERF_DIR:-}" ] && [ "$pid" = "$ENGINE_PID" ]; then
    mkdir -p "$PERF_DIR"
    perf record -q -F 999 ${PERF_CALLGRAPH:--g} -p "$pid" -o "$PERF_DIR/$label.data" >/dev/null 2>&1 &
    perf_pid=$!
    PIDS+=($perf_pid)
  fi
  before=$(cpu_ticks "$pid")
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "$hdr" "$url" >"$out" 2>&1
  after=$(cpu_ticks "$pid")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null || true; stop "$perf_pid"; fi
  python3 - "$out" "$((after - before))" "$HZ" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
errors = 0
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if m: errors += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m: errors += sum(int(x) for x in m.groups())
cpu_us = ticks * 1e6 / hz / max(total, 1)
print(f"{rps:.0f} {p99:.2f} {errors} {cpu_us:.1f}")
EOF
}

ROWS="$TMP/rows.txt"
: >"$ROWS"
# ROUNDS measured runs per proxy, alternating ours and NGINX; the table shows each column's median.
bench_case() {  # threads case ours_url ours_header nginx_url nginx_label
  local n="$1" name="$2" ours theirs r warm
  case " $CASES " in *" $name "*) ;; *) return 0 ;; esac
  for r in $(seq "$ROUNDS"); do
    warm=no; [ "$r" = 1 ] && warm=yes
    ours=$(run_wrk "ours-$name-$n-$r" "$ENGINE_PID" "$3" "$4" "$warm")
    theirs=$(run_wrk "nginx-$name-$n-$r" "$NGINX_PID" "$5" "X-Bench: 1" "$warm")
    echo "$n $name $ours $theirs $6" >>"$ROWS"
    printf '  %-9s round %s: ours %s | nginx %s   (req/s p99_ms errors cpu_us/req)\n' "$name" "$r" "$ours" "$theirs" >&2
  done
}

# --- run -------------------------------------------------------------------------------------------
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
start_backend
for n in $THREADS; do
  echo "threads=$n: starting engine ($ENGINE_GROUP group, $n loop(s)) and NGINX (worker_processes $n)" >&2
  start_engine "$n"
  start_peer_nginx "$n"
  make_key
  check "http://127.0.0.1:$ENGINE_PORT/keyless/" no
  check "http://127.0.0.1:$ENGINE_PORT/keyed/" no "X-API-Key: $API_KEY"
  check "http://127.0.0.1:$ENGINE_PORT/cached/" yes
  check "http://127.0.0.1:$NGINX_PORT/keyless/" no
  check "http://127.0.0.1:$NGINX_PORT/cached/" yes
  case " $CASES " in *" https "*)
    check "http://127.0.0.1:$ENGINE_PORT/https/" no
    check "http://127.0.0.1:$NGINX_PORT/https/" no ;;
  esac
  bench_case "$n" keyless "http://127.0.0.1:$ENGINE_PORT/keyless/" "X-Bench: 1" "http://127.0.0.1:$NGINX_PORT/keyless/" "proxy"
  bench_case "$n" api-key "http://127.0.0.1:$ENGINE_PORT/keyed/" "X-API-Key: $API_KEY" "http://127.0.0.1:$NGINX_PORT/keyless/" "keyless proxy (no equivalent)"
  bench_case "$n" cache-hit "http://127.0.0.1:$ENGINE_PORT/cached/" "X-Bench: 1" "http://127.0.0.1:$NGINX_PORT/cached/" "proxy_cache hit"
  bench_case "$n" https "http://127.0.0.1:$ENGINE_PORT/https/" "X-Bench: 1" "http://127.0.0.1:$NGINX_PORT/https/" "proxy to https"
  # 5xx answers and the reasons behind refusals, as the engine counted them (explains non-2xx in the table;
  # the 499s it records for requests in flight when wrk stops are not errors and are left out).
  curl -sf --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null |
    grep -E '^gc_engine_(requests_total.*status_class="5xx"|(rate_limited|rate_limit_unavailable|auth_unavailable|auth_failures|backend_failures)_total)' |
    awk -v n="$n" '$NF != 0 { print "threads=" n " engine counted: " $0 }' >>"$TMP/notes.txt" || true
  stop "$ENGINE_PID"
  stop "$NGINX_PID"
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report ----------------------------------------------------------------------------------------
echo
[ "${REDIS_CLUSTER:-0}" = 1 ] && echo "Redis: a three-master Redis Cluster on 127.0.0.1:${REDIS_CLUSTER_PORTS[*]} (engine redis.cluster=true)"
echo "gateway-engine vs NGINX $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), wrk $WRK_THREADS thread(s) -c$CONNECTIONS -d$DURATION --latency (after a $WARMUP warm-up), keep-alive, 127.0.0.1, $ROUNDS round(s)"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average before $LOAD_BEFORE, after $LOAD_AFTER"
echo "our build: $BUILD_DESCRIPTION"
if [ "$ENGINE_GROUP" = singleton ]; then
  echo "threads: engine eventLoops=0 with NIO_SINGLETON_GROUP_LOOP_COUNT=N (N event loops for everything), NGINX worker_processes N"
else
  echo "threads: engine eventLoops=N (+ NIO singleton group, $(nproc) loops, for its Redis client), NGINX worker_processes N"
fi
echo "access logs off on both (engine log.access=false, NGINX access_log off); backend: NGINX, 1 worker, ${#BODY}-byte body"
echo "CPU µs/req: user+system CPU time of the proxy's process(es) during the measured run, per request served;"
echo "ratio req/s = ours/NGINX throughput; ratio CPU = NGINX CPU per request / ours (above 1: ours is cheaper)"
echo
python3 - "$ROWS" "$TMP/notes.txt" "$ROOT/bench" <<'EOF'
import sys
from statistics import median
sys.path.insert(0, sys.argv[3])
from paired import describe
raw = [l.split(None, 10) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for n, case, *vals in raw:
    groups.setdefault((n, case), []).append(vals)
rows = []
for (n, case), runs in groups.items():
    col = lambda i, f=float: median(f(r[i]) for r in runs)
    rows.append((n, case, col(0), col(1), sum(int(r[2]) for r in runs), col(3), col(4), col(5),
                 sum(int(r[6]) for r in runs), col(7), runs[0][8].strip(), len(runs)))
hdr = ("threads", "case", "ours req/s", "ours p99 ms", "ours CPU µs/req", "nginx req/s", "nginx p99 ms",
       "nginx CPU µs/req", "ratio req/s", "ratio CPU", "nginx side")
widths = (7, 9, 10, 11, 15, 11, 12, 16, 11, 9, 29)
fmt = "| " + " | ".join("{:>%d}" % w for w in widths[:-1]) + " | {:<%d} |" % widths[-1]
print(fmt.format(*hdr))
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
notes = []
for n, case, ors, op99, oerr, ocpu, nrs, np99, nerr, ncpu, label, k in rows:
    print(fmt.format(n, case, f"{ors:.0f}", f"{op99:.2f}", f"{ocpu:.1f}", f"{nrs:.0f}", f"{np99:.2f}", f"{ncpu:.1f}",
                     f"{ors / nrs:.2f}x", f"{ncpu / ocpu:.2f}x", label))
    if oerr or nerr:
        notes.append(f"threads={n} {case}: errors/non-2xx ours {oerr}, nginx {nerr}")
if rows and rows[0][-1] > 1:
    print(f"(medians of {rows[0][-1]} alternating rounds)")
for note in notes:
    print("WARNING:", note)
try:
    for line in open(sys.argv[2]):
        print(line.rstrip())
except FileNotFoundError:
    pass
goals = {"keyless": "keyless proxy >= 1.0x NGINX", "cache-hit": "cache hit >= 1.0x NGINX proxy_cache hit"}
print()
# The verdict is on the ratios within each round (bench/paired.py): met only when the interval around
# their median is above 1.0, level when it spans 1.0. The ratio of the medians is shown beside it.
for n, case, ors, _, _, _, nrs, *_ in rows:
    if case in goals:
        ratios = [float(r[0]) / float(r[4]) for r in groups[(n, case)]]
        line, result = describe("ours/NGINX req/s", ratios)
        print(f"goal (threads={n}) {goals[case]}: {result} -- {line}; ratio of medians {ors / nrs:.2f}x")
EOF
