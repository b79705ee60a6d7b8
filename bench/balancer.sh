#!/usr/bin/env bash
# edge-balancer vs HAProxy and NGINX in front of the same two backends, in one run.
#
#   case     client                                   ours            HAProxy               NGINX
#   h1       wrk -t1 -c50 --latency (keep-alive)      plain port      bind                  listen
#   h2c      h2load -c10 -m10 (prior knowledge)       same plain port bind ... proto h2     listen ... http2
#   h2-tls   h2load -c10 -m10 (TLS, ALPN h2)          tls.port        bind ... ssl alpn h2  listen ... ssl http2
#
# Everything listens on 127.0.0.1 on free ports: two backends (single-process NGINX answering a fixed
# 100-byte body, and 200 on the health path), our balancer (release build; static nodes, no Redis,
# round robin, active health checks, access log off), HAProxy and NGINX (configs from the templates in
# bench/balancer/; the filled-in copies are printed with PRINT_CONFIGS=1). The three proxies get the same
# number of threads: NIO_SINGLETON_GROUP_LOOP_COUNT=N for ours (edge-balancer has no thread-count key;
# it runs on NIO's singleton event loop group, which reads that variable, else one loop per core),
# `nbthread N` for HAProxy, `worker_processes N` for NGINX.
#
# Each case and proxy: a warm-up run, then a measured run (ROUNDS>1: that many, alternating the
# proxies, median reported; the goal lines judge the ratios to HAProxy taken within each round, by
# bench/paired.py: "met" only when the intervals around their medians are on the right side of 1.0 for
# req/s and p99 alike, "level" when either spans 1.0). Then the failover run per proxy: wrk for FAILOVER_DURATION while backend 2
# is SIGKILLed at FAILOVER_KILL_AT; failed requests = non-2xx/3xx + socket errors (wrk's counts). The
# backend is restarted (and seen healthy again) before the next proxy's run.
#
# Every process started here is stopped by the EXIT trap; every load run is bounded in time.
#
#   bench/balancer.sh                              THREADS="1", 10 s per measured run
#   THREADS="1 2" ROUNDS=3 DURATION=10 bench/balancer.sh
#   BALANCER_BIN=path/to/edge-balancer bench/balancer.sh   (skip the build)
#   STDLIB=dynamic bench/balancer.sh               (link the Swift runtime dynamically; by default the build
#                                                  is the one scripts/install.sh deploys: release,
#                                                  --static-swift-stdlib, run-time exclusivity checks off)
#   EXCLUSIVITY=checked bench/balancer.sh          (keep the run-time exclusivity checks)
#   PERF_DIR=/tmp/perf bench/balancer.sh           (also `perf record -g` our measured runs)
#   CASES="h1" FAILOVER=0 bench/balancer.sh        (only some cases, no failover run: for quick comparisons)
#   UPSTREAM_TLS=1 CASES=h1 FAILOVER=0 bench/balancer.sh   (the backends speak TLS only: ours with
#                                                   upstream.tls and upstream.caFile, HAProxy with
#                                                   ssl verify required ca-file, NGINX with proxy_ssl_verify;
#                                                   all three verify the backends' certificate and keep
#                                                   TLS connections alive)
#   UPSTREAM_TLS=1 UPSTREAM_H2=1 CASES=h1 FAILOVER=0 bench/balancer.sh   (as above with HTTP/2 to the
#                                                   backends: ours with upstream.protocol h2, HAProxy with
#                                                   alpn h2; NGINX cannot proxy HTTP/2 and stays on
#                                                   HTTP/1.1 over TLS; health checks HTTP/1.1 for all)
#
# Needs (installed with apt-get when missing): haproxy, nginx (or nginx-light), wrk, h2load
# (nghttp2-client), openssl, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export PATH="/opt/swift/usr/bin:$PATH"

THREADS="${THREADS:-1}"
DURATION="${DURATION:-10}"          # seconds per measured run
WARMUP="${WARMUP:-3}"               # seconds of warm-up before each measured run
ROUNDS="${ROUNDS:-1}"
CASES="${CASES:-h1 h2c h2-tls}"
CONNECTIONS="${CONNECTIONS:-50}"    # wrk
H2_CLIENTS="${H2_CLIENTS:-10}"      # h2load -c
H2_STREAMS="${H2_STREAMS:-10}"      # h2load -m
FAILOVER="${FAILOVER:-1}"
FAILOVER_DURATION="${FAILOVER_DURATION:-10}"
FAILOVER_KILL_AT="${FAILOVER_KILL_AT:-3}"
export CONNECTIONS FAILOVER_DURATION FAILOVER_KILL_AT
TPL="$ROOT/bench/balancer"

# --- tools -----------------------------------------------------------------------------------------
source "$ROOT/bench/lib.sh"
bench_need haproxy:haproxy nginx:nginx wrk:wrk h2load:nghttp2-client openssl:openssl curl:curl python3:python3
NGINX="$(command -v nginx)"
HAPROXY="$(command -v haproxy)"

# --- build (bench/lib.sh) -------------------------------------------------------------------------
if [ -n "${BALANCER_BIN:-}" ]; then
  BALANCER="$BALANCER_BIN"  # a prebuilt binary (for trying the script); the figures need the deployed build
  BUILD_DESCRIPTION="prebuilt $BALANCER"
  [ -x "$BALANCER" ] || { echo "no binary at $BALANCER" >&2; exit 1; }
else
  bench_build edge-balancer
  BALANCER="$BIN"
fi

# --- processes and cleanup (bench/lib.sh) ----------------------------------------------------------
bench_init balancer

fill() {  # template output KEY=VALUE...: replaces @KEY@
  local tpl="$1" out="$2" expr=() kv
  shift 2
  for kv in "$@"; do expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${expr[@]}" "$tpl" >"$out"
  if grep -v '^ *#' "$out" | grep -q '@[A-Z_0-9]*@'; then echo "unfilled placeholder in $out" >&2; exit 1; fi
}

HEALTH_PATH="/__gateway/health"
BODY="$(printf 'ok%098d' 0)"  # a fixed 100-byte body
USER_LINE=""; [ "$(id -u)" -eq 0 ] && USER_LINE="user root;"
B1_PORT=$(free_port); B2_PORT=$(free_port)
OURS_PORT=$(free_port); OURS_TLS=$(free_port); OURS_ADMIN=$(free_port)
HA_PORT=$(free_port); HA_H2C=$(free_port); HA_TLS=$(free_port)
NG_PORT=$(free_port); NG_H2C=$(free_port); NG_TLS=$(free_port)
ADMIN_TOKEN="bench-admin-token-$(date +%s)-$$"

# --- certificate -----------------------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
cat "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/haproxy.pem"

# UPSTREAM_TLS=1: the backends listen with TLS only (the same certificate, which is its own CA), and
# every proxy verifies it on its upstream connections.
UPSTREAM_TLS="${UPSTREAM_TLS:-0}"
BACKEND_SCHEME=http; LISTEN_SSL=""; SSL_LINES=""; SERVER_SSL=""; UPSTREAM_SCHEME=http; PROXY_SSL_LINES=""
OURS_UPSTREAM=()
if [ "$UPSTREAM_TLS" = 1 ]; then
  BACKEND_SCHEME=https
  LISTEN_SSL="ssl "
  SSL_LINES="ssl_certificate $TMP/cert.pem; ssl_certificate_key $TMP/key.pem;"
  SERVER_SSL="ssl verify required ca-file $TMP/cert.pem"
  UPSTREAM_SCHEME=https
  PROXY_SSL_LINES="proxy_ssl_verify on; proxy_ssl_trusted_certificate $TMP/cert.pem; proxy_ssl_name localhost; proxy_ssl_server_name on; proxy_ssl_session_reuse on;"
  OURS_UPSTREAM=(--set "upstream.tls=true" --set "upstream.caFile=$TMP/cert.pem")
  if [ "${UPSTREAM_H2:-0}" = 1 ]; then
    LISTEN_SSL="ssl http2 "
    SERVER_SSL="$SERVER_SSL alpn h2 check-alpn http/1.1"
    OURS_UPSTREAM+=(--set "upstream.protocol=h2")
  fi
elif [ "${UPSTREAM_H2:-0}" = 1 ]; then
  echo "UPSTREAM_H2=1 needs UPSTREAM_TLS=1" >&2
  exit 2
fi

# --- backends --------------------------------------------------------------------------------------
B1_PID=""; B2_PID=""
start_backend() {  # 1|2
  local i="$1" port dir
  port=$([ "$i" = 1 ] && echo "$B1_PORT" || echo "$B2_PORT")
  dir="$TMP/backend$i"
  mkdir -p "$dir"
  fill "$TPL/nginx-backend.conf.tmpl" "$dir/nginx.conf" "USER_LINE=$USER_LINE" "DIR=$dir" "PORT=$port" \
    "HEALTH_PATH=$HEALTH_PATH" "BODY=$BODY" "LISTEN_SSL=$LISTEN_SSL" "SSL_LINES=$SSL_LINES"
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  if [ "$i" = 1 ]; then B1_PID=$pid; else B2_PID=$pid; fi
  wait_http "$BACKEND_SCHEME://127.0.0.1:$port$HEALTH_PATH" 200 "$dir/error.log" -k
}

# --- the three proxies -----------------------------------------------------------------------------
OURS_PID=""; HA_PID=""; NG_PID=""
start_ours() {  # threads
  NIO_SINGLETON_GROUP_LOOP_COUNT="$1" "$BALANCER" \
    --set "admin.token=$ADMIN_TOKEN" --set "admin.port=$OURS_ADMIN" \
    --set "listen.host=127.0.0.1" --set "listen.port=$OURS_PORT" \
    --set "tls.port=$OURS_TLS" --set "tls.certFile=$TMP/cert.pem" --set "tls.keyFile=$TMP/key.pem" \
    --set "discovery.redis=false" \
    --set "nodes.static=id=b1,host=127.0.0.1,port=$B1_PORT;id=b2,host=127.0.0.1,port=$B2_PORT" \
    --set "policy=round_robin" --set "health.path=$HEALTH_PATH" \
    --set "log.level=warning" --set "accessLog.level=off" "${OURS_UPSTREAM[@]}" \
    >"$TMP/ours-$1.log" 2>&1 &
  OURS_PID=$!
  PIDS+=("$OURS_PID")
  wait_http "http://127.0.0.1:$OURS_ADMIN/ready" 200 "$TMP/ours-$1.log"
  wait_ours_usable 2
}

ours_usable() {
  curl -s --max-time 1 "http://127.0.0.1:$OURS_ADMIN/health" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("nodes_usable","0"))' 2>/dev/null || echo 0
}

wait_ours_usable() {  # count: up to 20 s
  for _ in $(seq 200); do [ "$(ours_usable)" = "$1" ] && return 0; sleep 0.1; done
  echo "edge-balancer never saw $1 usable nodes (now $(ours_usable))" >&2
  return 1
}

start_haproxy() {  # threads
  local dir="$TMP/haproxy-$1"
  mkdir -p "$dir"
  fill "$TPL/haproxy.cfg.tmpl" "$dir/haproxy.cfg" "THREADS=$1" "PORT_H1=$HA_PORT" "PORT_H2C=$HA_H2C" \
    "PORT_TLS=$HA_TLS" "CERT_PEM=$TMP/haproxy.pem" "HEALTH_PATH=$HEALTH_PATH" "PORT_B1=$B1_PORT" "PORT_B2=$B2_PORT" \
    "SERVER_SSL=$SERVER_SSL"
  "$HAPROXY" -c -q -f "$dir/haproxy.cfg"
  "$HAPROXY" -db -f "$dir/haproxy.cfg" >"$dir/stdout.log" 2>&1 &
  HA_PID=$!
  PIDS+=("$HA_PID")
  wait_http "http://127.0.0.1:$HA_PORT/" 200 "$dir/stdout.log"
  sleep 2.5  # health checks: rise 2 at inter 1s, so both servers are UP before load
}

start_nginx() {  # threads
  local dir="$TMP/nginx-$1"
  mkdir -p "$dir"
  fill "$TPL/nginx-peer.conf.tmpl" "$dir/nginx.conf" "USER_LINE=$USER_LINE" "THREADS=$1" "DIR=$dir" \
    "PORT_H1=$NG_PORT" "PORT_H2C=$NG_H2C" "PORT_TLS=$NG_TLS" "CERT=$TMP/cert.pem" "KEY=$TMP/key.pem" \
    "PORT_B1=$B1_PORT" "PORT_B2=$B2_PORT" "UPSTREAM_SCHEME=$UPSTREAM_SCHEME" "PROXY_SSL_LINES=$PROXY_SSL_LINES"
  "$NGINX" -t -q -p "$dir" -c "$dir/nginx.conf"
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  NG_PID=$!
  PIDS+=("$NG_PID")
  wait_http "http://127.0.0.1:$NG_PORT/" 200 "$dir/error.log"
}

pid_of() { case "$1" in ours) echo "$OURS_PID" ;; haproxy) echo "$HA_PID" ;; nginx) echo "$NG_PID" ;; esac; }
url_of() {  # proxy case
  local h1 h2c tls
  case "$1" in
    ours) h1=$OURS_PORT; h2c=$OURS_PORT; tls=$OURS_TLS ;;
    haproxy) h1=$HA_PORT; h2c=$HA_H2C; tls=$HA_TLS ;;
    nginx) h1=$NG_PORT; h2c=$NG_H2C; tls=$NG_TLS ;;
  esac
  case "$2" in
    h1) echo "http://127.0.0.1:$h1/" ;;
    h2c) echo "http://127.0.0.1:$h2c/" ;;
    h2-tls) echo "https://127.0.0.1:$tls/" ;;
  esac
}

# Each proxy, each protocol: 200, the backend's body, the protocol asked for, and answers from both backends.
check_proxy() {  # proxy
  local p="$1" c url opts out proto
  for c in h1 h2c h2-tls; do
    url=$(url_of "$p" "$c")
    case "$c" in h1) opts=(--http1.1) ;; h2c) opts=(--http2-prior-knowledge) ;; h2-tls) opts=(-k --http2) ;; esac
    out=$(curl -s --max-time 5 "${opts[@]}" -o "$TMP/check.body" -w '%{http_code} %{http_version}' "$url" || true)
    proto=$([ "$c" = h1 ] && echo 1.1 || echo 2)
    if [ "$out" != "200 $proto" ] || ! cmp -s <(printf '%s' "$BODY") "$TMP/check.body"; then
      echo "check failed: $p $c $url: '$out' (want '200 $proto' and the backend body)" >&2
      exit 1
    fi
  done
}

# --- measurements ----------------------------------------------------------------------------------

load_run() {  # case url duration_s out [latency]
  local c="$1" url="$2" d="$3" out="$4"
  case "$c" in
    h1) timeout $((d + 15)) wrk -t1 -c"$CONNECTIONS" -d"${d}s" --latency "$url" >"$out" 2>&1 || true ;;
    h2c | h2-tls)
      timeout $((d + 15)) h2load -t1 -c"$H2_CLIENTS" -m"$H2_STREAMS" -D "$d" --log-file="$out.log" "$url" >"$out" 2>&1 || true ;;
  esac
}

# Prints "req_per_s p99_ms errors cpu_us_per_request" for one measured run (after a warm-up run).
measure() {  # proxy case round
  local p="$1" c="$2" r="$3" url pid out before after perf_pid=""
  url=$(url_of "$p" "$c")
  pid=$(pid_of "$p")
  load_run "$c" "$url" "$WARMUP" "$TMP/warmup.txt"
  out="$TMP/run-$p-$c-$N-$r.txt"
  if [ -n "${PERF_DIR:-}" ] && [ "$p" = ours ]; then
    mkdir -p "$PERF_DIR"
    perf record -q -F 999 -g -p "$pid" -o "$PERF_DIR/ours-$c-$N.data" >/dev/null 2>&1 &
    perf_pid=$!
    PIDS+=("$perf_pid")
  fi
  before=$(cpu_ticks "$pid")
  load_run "$c" "$url" "$DURATION" "$out"
  after=$(cpu_ticks "$pid")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true; forget "$perf_pid"; fi
  python3 - "$c" "$out" "$((after - before))" "$HZ" <<'EOF'
import os, re, sys
case, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(path).read()
try:
    if case == "h1":
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
        total = int(re.search(r"(\d+) requests in", text).group(1))
        m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        errors = 0
        m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
        if m: errors += int(m.group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        if m: errors += sum(int(x) for x in m.groups())
    else:
        rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text).group(1))
        m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text)
        total, errors = int(m.group(3)), int(m.group(5)) + int(m.group(6)) + int(m.group(7))
        m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
        errors += int(m.group(3)) + int(m.group(4))
        lat = []
        with open(path + ".log") as f:  # start µs, status, latency µs
            for line in f:
                parts = line.split()
                if len(parts) >= 3: lat.append(int(parts[2]))
        os.remove(path + ".log")
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1000 if lat else float("nan")
except Exception as e:
    sys.stderr.write(f"cannot parse {path}: {e}\n{text[-2000:]}\n")
    print("0 nan 1 nan")
    sys.exit(0)
print(f"{rps:.0f} {p99:.2f} {errors} {ticks * 1e6 / hz / max(total, 1):.1f}")
EOF
}

# --- failover ---------------------------------------------------------------------------------------
# wrk for FAILOVER_DURATION; backend 2 SIGKILLed at FAILOVER_KILL_AT. Appends
# "threads proxy requests failed req/s p99_ms detail" to $FAILS. Runs in this shell (not in $(...)), so
# the killed backend is reaped and forgotten here.
failover() {  # proxy
  local p="$1" url out wrk_pid
  url=$(url_of "$p" h1)
  out="$TMP/failover-$p.txt"
  wrk -t1 -c"$CONNECTIONS" -d"${FAILOVER_DURATION}s" --latency "$url" >"$out" 2>&1 &
  wrk_pid=$!
  PIDS+=("$wrk_pid")
  sleep "$FAILOVER_KILL_AT"
  kill -KILL "$B2_PID"
  wait "$B2_PID" 2>/dev/null || true
  forget "$B2_PID"
  wait "$wrk_pid" || true
  forget "$wrk_pid"
  python3 - "$N" "$p" "$out" >>"$FAILS" <<'EOF'
import re, sys
n, proxy, path = sys.argv[1:4]
text = open(path).read()
total = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
errors, detail = 0, []
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if m:
    errors += int(m.group(1))
    detail.append(f"non-2xx {m.group(1)}")
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m:
    errors += sum(int(x) for x in m.groups())
    detail.append("socket connect/read/write/timeout " + "/".join(m.groups()))
print(f"{n} {proxy} {total} {errors} {rps:.0f} {p99:.2f} {', '.join(detail) or '-'}")
EOF
}

# Restarts backend 2 and waits until every proxy that checks health sees it again.
revive_backend2() {
  start_backend 2
  wait_ours_usable 2
  sleep 3  # HAProxy: rise 2 at inter 1s; NGINX has no active checks (fail_timeout 10s, passive)
}

# --- run -------------------------------------------------------------------------------------------
busy() { ps -eo comm= | grep -cE '^(swift-frontend|swift-build|swiftc|clang|ld|lld|cc1)' || true; }
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
BUSY_BEFORE="$(busy)"
ROWS="$TMP/rows.txt"; : >"$ROWS"
FAILS="$TMP/failover.txt"; : >"$FAILS"
CIPHERS="$TMP/ciphers.txt"; : >"$CIPHERS"
start_backend 1
start_backend 2
FIRST_N="${THREADS%% *}"
for N in $THREADS; do
  echo "threads=$N: ours (NIO_SINGLETON_GROUP_LOOP_COUNT=$N), HAProxy (nbthread $N), NGINX (worker_processes $N)" >&2
  start_ours "$N"
  start_haproxy "$N"
  start_nginx "$N"
  for p in ours haproxy nginx; do check_proxy "$p"; done
  if [ -n "${PRINT_CONFIGS:-}" ]; then cat "$TMP/haproxy-$N/haproxy.cfg" "$TMP/nginx-$N/nginx.conf" >&2; fi
  for c in $CASES; do
    for r in $(seq "$ROUNDS"); do
      for p in ours haproxy nginx; do
        res=$(measure "$p" "$c" "$r")
        echo "$N $c $p $r $res" >>"$ROWS"
        printf '  %-6s %-8s round %s: %s   (req/s p99_ms errors cpu_us/req)\n' "$c" "$p" "$r" "$res" >&2
        if [ "$c" = h2-tls ] && [ "$r" = 1 ]; then
          echo "$N $p $(grep -m1 -o 'Cipher: .*' "$TMP/run-$p-$c-$N-$r.txt" || echo 'Cipher: ?')" >>"$CIPHERS"
        fi
      done
    done
  done
  if [ "$FAILOVER" = 1 ] && [ "$N" = "$FIRST_N" ]; then
    for p in ours haproxy nginx; do
      failover "$p"
      printf '  failover %-8s: %s   (requests failed req/s p99_ms detail)\n' "$p" "$(tail -1 "$FAILS" | cut -d' ' -f3-)" >&2
      revive_backend2
    done
  fi
  stop "$OURS_PID"; stop "$HA_PID"; stop "$NG_PID"
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
BUSY_AFTER="$(busy)"

# --- report ----------------------------------------------------------------------------------------
echo
echo "edge-balancer vs HAProxy $("$HAPROXY" -v | head -1 | awk '{print $3}') and NGINX $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), two backends (single-process NGINX, ${#BODY}-byte body), all on 127.0.0.1"
echo "h1: wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency (keep-alive); h2c, h2-tls: h2load -t1 -c$H2_CLIENTS -m$H2_STREAMS -D $DURATION; ${WARMUP}s warm-up before each run; rounds: $ROUNDS (median)"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); load average before $LOAD_BEFORE, after $LOAD_AFTER; compiler processes running before/after: $BUSY_BEFORE/$BUSY_AFTER"
echo "our build: $BUILD_DESCRIPTION"
echo "TLS (h2load's view): $(awk '!seen[$2]++ { p=$2; $1=""; $2=""; sub(/^ +/, ""); printf "%s %s; ", p, $0 }' "$CIPHERS")"
echo
python3 - "$ROWS" "$FAILS" "$ROOT/bench" <<'EOF'
import math, os, statistics, sys
from collections import defaultdict
sys.path.insert(0, sys.argv[3])
from paired import describe
runs = defaultdict(list)
rounds = defaultdict(dict)  # (threads, case, proxy) -> round -> (req/s, p99)
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 8: continue
    n, case, proxy, r, rps, p99, err, cpu = f[:8]
    runs[(n, case, proxy)].append((float(rps), float(p99), int(err), float(cpu)))
    rounds[(n, case, proxy)][r] = (float(rps), float(p99))
def med(n, case, proxy, i):
    v = [r[i] for r in runs.get((n, case, proxy), [])]
    return statistics.median(v) if v else float("nan")
keys = sorted({(n, c) for n, c, _ in runs}, key=lambda k: (int(k[0]), ["h1", "h2c", "h2-tls"].index(k[1])))
print("| threads | case | ours req/s | ours p99 ms | HAProxy req/s | HAProxy p99 ms | NGINX req/s | NGINX p99 ms | ours/HAProxy | ours/NGINX |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
goals, warnings = [], []
for n, c in keys:
    o, h, g = (med(n, c, p, 0) for p in ("ours", "haproxy", "nginx"))
    op, hp, gp = (med(n, c, p, 1) for p in ("ours", "haproxy", "nginx"))
    print(f"| {n} | {c} | {o:.0f} | {op:.2f} | {h:.0f} | {hp:.2f} | {g:.0f} | {gp:.2f} | {o / h:.2f}x | {o / g:.2f}x |")
    # The verdict is on the ratios within each round (bench/paired.py): met only when the intervals around
    # their medians are on the right side of 1.0 for both req/s and p99; level when either spans 1.0.
    ours_r, ha_r = rounds[(n, c, "ours")], rounds[(n, c, "haproxy")]
    both = sorted(set(ours_r) & set(ha_r), key=int)
    rps_line, rps_v = describe("req/s ours/HAProxy", [ours_r[r][0] / ha_r[r][0] for r in both])
    p99_line, p99_v = describe("p99 ours/HAProxy", [ours_r[r][1] / ha_r[r][1] for r in both], good_above=False)
    met = "met" if rps_v == p99_v == "met" else ("NOT met" if "NOT met" in (rps_v, p99_v) else "level")
    oc, hc = med(n, c, "ours", 3), med(n, c, "haproxy", 3)
    goals.append(f"goal threads={n} {c}: >= 1.0x HAProxy req/s with p99 no worse: {met}"
                 f" (medians: {o / h:.2f}x req/s, p99 {op:.2f} vs {hp:.2f} ms)\n  {rps_line}\n  {p99_line}"
                 f"\n  CPU per request {oc / hc:.2f}x HAProxy's (the steadier figure when the machine is busy)")
    for p in ("ours", "haproxy", "nginx"):
        e = sum(r[2] for r in runs[(n, c, p)])
        if e: warnings.append(f"WARNING: threads={n} {c} {p}: {e} failed requests during measured runs")
print()
print("CPU time of the proxy process(es) per request served, µs (user+system):")
print("| threads | case | ours | HAProxy | NGINX |")
print("|---:|---|---:|---:|---:|")
for n, c in keys:
    print(f"| {n} | {c} | " + " | ".join(f"{med(n, c, p, 3):.1f}" for p in ("ours", "haproxy", "nginx")) + " |")
fails = [l.split(None, 6) for l in open(sys.argv[2]) if l.strip()]
if fails:
    print()
    print(f"Failover: wrk -t1 -c{os.environ['CONNECTIONS']} -d{os.environ['FAILOVER_DURATION']}s, backend 2 SIGKILLed at {os.environ['FAILOVER_KILL_AT']} s; failed = non-2xx + socket errors")
    print("| threads | proxy | requests | failed | req/s | p99 ms | detail |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for n, p, total, failed, rps, p99, detail in fails:
        print(f"| {n} | {p} | {total} | {failed} | {rps} | {p99} | {detail.strip()} |")
print()
for line in goals + warnings: print(line)
EOF
