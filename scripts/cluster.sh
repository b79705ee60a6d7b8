#!/usr/bin/env bash
# Runs a local gateway-cluster on loopback: Redis, and for each region its nodes (engine + agent) and an
# edge balancer. Ctrl-C (or SIGTERM) stops every process it started; nothing is left running.
#
#   scripts/cluster.sh            build (release) if needed, start, wait for Ctrl-C
#   CLUSTER_BUILD=debug scripts/cluster.sh
#   CLUSTER_REDIS=cluster scripts/cluster.sh   the same on a three-master Redis Cluster (6399-6401)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="/opt/swift/usr/bin:$PATH"
RUN_DIR="$ROOT/run"
CONFIG=${CLUSTER_BUILD:-release}

# --- prerequisites -------------------------------------------------------------------------------
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
[ -f /usr/include/hiredis/hiredis.h ] || need+=(libhiredis-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- one cluster at a time -----------------------------------------------------------------------
mkdir -p "$RUN_DIR"
exec 9>"$RUN_DIR/.lock"
if ! flock -n 9; then
  echo "cluster.sh: a local cluster is already running from $ROOT (lock $RUN_DIR/.lock); stop it with Ctrl-C first." >&2
  exit 1
fi

REDIS_PORT=6399
REDIS_MODE=${CLUSTER_REDIS:-single}
case $REDIS_MODE in
  single) REDIS_PORTS=("$REDIS_PORT") ;;
  cluster) REDIS_PORTS=("$REDIS_PORT" 6400 6401) ;;
  *) echo "cluster.sh: CLUSTER_REDIS must be single or cluster, not $REDIS_MODE" >&2; exit 1 ;;
esac
BACKENDS=(7001 7002)
# Nodes: id region zone engine-data-port engine-admin-port agent-admin-port
NODES=(
  "eu-west-1a eu-west eu-west-1a 8101 9111 9211"
  "eu-west-1b eu-west eu-west-1b 8102 9112 9212"
  "us-east-1a us-east us-east-1a 8103 9113 9213"
)
# Balancers: name region data-port admin-port tls-port(or -)
BALANCERS=(
  "balancer-eu eu-west 8080 9311 8443"
  "balancer-us us-east 8081 9312 -"
)
PORTS=("${REDIS_PORTS[@]}" "${BACKENDS[@]}")
[ "$REDIS_MODE" = cluster ] && for p in "${REDIS_PORTS[@]}"; do PORTS+=("$((p + 10000))"); done
for n in "${NODES[@]}"; do read -r _ _ _ d a g <<<"$n"; PORTS+=("$d" "$a" "$g"); done
for b in "${BALANCERS[@]}"; do read -r _ _ d a t <<<"$b"; PORTS+=("$d" "$a"); [ "$t" != "-" ] && PORTS+=("$t"); done
busy=()
for p in "${PORTS[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then busy+=("$p"); fi
done
if [ ${#busy[@]} -gt 0 ]; then
  echo "cluster.sh: port(s) already in use on 127.0.0.1: ${busy[*]}; free them and try again. Nothing was started." >&2
  exit 1
fi

echo "building ($CONFIG)..."
# The build's warnings and errors go to stderr; its progress lines are left out.
build() { swift build -c "$CONFIG" --product "$1" >/dev/null; }
for product in gateway-engine node-agent edge-balancer gatewayctl; do build "$product"; done
BIN=$(swift build -c "$CONFIG" --show-bin-path)

TOKEN_FILE="$RUN_DIR/admin-token"
[ -s "$TOKEN_FILE" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$TOKEN_FILE"
chmod 600 "$TOKEN_FILE"
LOGS="$RUN_DIR/logs"; mkdir -p "$LOGS" "$RUN_DIR/redis"

# Started processes by stop order: agents drain first (their engines still up), then balancers and
# engines, then backends and Redis.
AGENT_PIDS=(); FRONT_PIDS=(); BASE_PIDS=()
stop_group() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
stop_all() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  stop_group "${AGENT_PIDS[@]}"
  stop_group "${FRONT_PIDS[@]}"
  stop_group "${BASE_PIDS[@]}"
  echo "stopped."
  exit 0
}
trap stop_all INT TERM EXIT

start() { # group name command...
  local group=$1 name=$2; shift 2
  # Own session: a Ctrl-C in the terminal reaches only this script, which stops everything in order.
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  case $group in
    agent) AGENT_PIDS+=("$!") ;;
    front) FRONT_PIDS+=("$!") ;;
    *) BASE_PIDS+=("$!") ;;
  esac
}
wait_http() { # url, name
  for _ in $(seq 200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "cluster.sh: $2 did not become healthy; see $LOGS/$2.log" >&2
  tail -20 "$LOGS/$2.log" >&2 || true
  exit 1
}

REDIS_SETTINGS=(--set "redis.url=redis://127.0.0.1:$REDIS_PORT")
if [ "$REDIS_MODE" = single ]; then
  start base redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN_DIR/redis"
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
else
  # Three masters, the slots split evenly, joined with CLUSTER MEET (no replicas: a local demo).
  for p in "${REDIS_PORTS[@]}"; do
    mkdir -p "$RUN_DIR/redis/$p"; rm -f "$RUN_DIR/redis/$p/nodes.conf"
    start base "redis-$p" redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN_DIR/redis/$p" \
      --cluster-enabled yes --cluster-config-file nodes.conf
  done
  for p in "${REDIS_PORTS[@]}"; do for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done; done
  redis-cli -p 6399 cluster addslotsrange 0 5460 >/dev/null
  redis-cli -p 6400 cluster addslotsrange 5461 10922 >/dev/null
  redis-cli -p 6401 cluster addslotsrange 10923 16383 >/dev/null
  redis-cli -p 6399 cluster meet 127.0.0.1 6400 >/dev/null
  redis-cli -p 6399 cluster meet 127.0.0.1 6401 >/dev/null
  formed=0
  for _ in $(seq 200); do
    formed=1
    for p in "${REDIS_PORTS[@]}"; do
      redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' || formed=0
      redis-cli -p "$p" cluster info | grep -q 'cluster_known_nodes:3' || formed=0
    done
    [ $formed -eq 1 ] && break; sleep 0.1
  done
  if [ $formed -ne 1 ]; then echo "cluster.sh: the Redis Cluster did not form; see $LOGS/redis-*.log" >&2; exit 1; fi
  REDIS_SETTINGS+=(--set redis.cluster=true --set "redis.clusterSeeds=127.0.0.1:6400,127.0.0.1:6401")
  export GATEWAYCTL_REDIS_CLUSTER=true
fi
for p in "${BACKENDS[@]}"; do start base "backend-$p" python3 "$ROOT/scripts/sample-backend.py" "$p" "backend-$p"; done

# A self-signed certificate for the TLS listener of the eu-west balancer.
if [ ! -s "$RUN_DIR/tls/cert.pem" ]; then
  mkdir -p "$RUN_DIR/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$RUN_DIR/tls/key.pem" -out "$RUN_DIR/tls/cert.pem" 2>/dev/null
fi

COMMON=("${REDIS_SETTINGS[@]}" --set "admin.tokenFile=$TOKEN_FILE" --set "log.level=notice")
SEEDED=0
for n in "${NODES[@]}"; do
  read -r id region zone data admin agent <<<"$n"
  seed=(); [ $SEEDED -eq 0 ] && seed=(--set "apis.seedFile=$ROOT/docs/examples/apis.yaml") && SEEDED=1
  start front "engine-$id" "$BIN/gateway-engine" "${COMMON[@]}" "${seed[@]}" --set "listen.port=$data" --set "admin.port=$admin" --set log.access=false \
    --set "listen.trustedProxies=127.0.0.0/8"
  start agent "agent-$id" "$BIN/node-agent" "${COMMON[@]}" --set "admin.port=$agent" --set "node.id=$id" --set "node.region=$region" \
    --set "node.zone=$zone" --set "node.address=127.0.0.1" --set "node.port=$data" \
    --set "engine.adminURL=http://127.0.0.1:$admin" --set "engine.tokenFile=$TOKEN_FILE" --set "state.file=$RUN_DIR/agent-$id.state" --set drain.deadline=5s
done
for b in "${BALANCERS[@]}"; do
  read -r name region data admin tls <<<"$b"
  tlsargs=(); [ "$tls" != "-" ] && tlsargs=(--set "tls.port=$tls" --set "tls.certFile=$RUN_DIR/tls/cert.pem" --set "tls.keyFile=$RUN_DIR/tls/key.pem")
  start front "$name" "$BIN/edge-balancer" "${COMMON[@]}" --set "region=$region" --set "listen.port=$data" --set "admin.port=$admin" \
    --set "policy=peak_ewma" --set "health.path=/__gateway/health" "${tlsargs[@]}"
done
for n in "${NODES[@]}"; do read -r id _ _ _ admin agent <<<"$n"; wait_http "http://127.0.0.1:$admin/ready" "engine-$id"; wait_http "http://127.0.0.1:$agent/health" "agent-$id"; done
for b in "${BALANCERS[@]}"; do read -r name _ _ admin _ <<<"$b"; wait_http "http://127.0.0.1:$admin/health" "$name"; done
# Balancers have discovered the nodes once a request goes through.
for _ in $(seq 100); do curl -fsS -o /dev/null http://127.0.0.1:8080/hello/ 2>/dev/null && break; sleep 0.1; done

export GATEWAYCTL_TOKEN_FILE="$TOKEN_FILE" GATEWAYCTL_REDIS="redis://127.0.0.1:$REDIS_PORT"
export GATEWAYCTL_BALANCER=http://127.0.0.1:9311 GATEWAYCTL_ENGINE=http://127.0.0.1:9111
KEY=$("$BIN/gatewayctl" keys create --name demo --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
echo "$KEY" > "$RUN_DIR/demo-api-key"

cat <<MSG

gateway-cluster is running (logs in $LOGS; admin token in $TOKEN_FILE; demo API key in $RUN_DIR/demo-api-key).

  Redis               redis://127.0.0.1:$REDIS_PORT ($REDIS_MODE$( [ "$REDIS_MODE" = cluster ] && echo ": 6399-6401, GATEWAYCTL_REDIS_CLUSTER=true" ))
  balancer eu-west    http://127.0.0.1:8080 (HTTP/1.1 + h2c)   https://127.0.0.1:8443 (TLS, h2 + http/1.1)   admin :9311
  balancer us-east    http://127.0.0.1:8081                                                                 admin :9312
  nodes (engine data/admin, agent admin)
    eu-west-1a  :8101 / :9111, :9211     eu-west-1b  :8102 / :9112, :9212     us-east-1a  :8103 / :9113, :9213
  backends            http://127.0.0.1:7001  http://127.0.0.1:7002

Try:
  curl -s http://127.0.0.1:8080/hello/world                          # keyless, through the eu-west balancer
  curl -s http://127.0.0.1:8081/hello/world                          # through the us-east balancer
  curl -sk --http2 https://127.0.0.1:8443/hello/world                # HTTP/2 over TLS
  curl -s -H "X-API-Key: $KEY" http://127.0.0.1:8080/orders/1        # API key + rate limit (the backend sees client_id, not the key)
  curl -si -X OPTIONS -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: POST' http://127.0.0.1:8080/orders/1
                                                                     # CORS preflight, answered by the engine
  curl -si http://127.0.0.1:8080/catalog/items | grep -i x-cache     # cached (run twice)
  curl -si --max-time 2 -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
       -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' http://127.0.0.1:8080/hello/ws
                                                                     # a WebSocket handshake: 101, then an echoing socket
  export GATEWAYCTL_TOKEN_FILE=$TOKEN_FILE GATEWAYCTL_REDIS=redis://127.0.0.1:$REDIS_PORT$( [ "$REDIS_MODE" = cluster ] && echo " GATEWAYCTL_REDIS_CLUSTER=true") \\
         GATEWAYCTL_BALANCER=http://127.0.0.1:9311 GATEWAYCTL_ENGINE=http://127.0.0.1:9111 PATH=$BIN:\$PATH
  gatewayctl nodes
  gatewayctl weight set eu-west-1b 300
  gatewayctl drain eu-west-1a        # and: gatewayctl undrain eu-west-1a
  gatewayctl cache purge --api catalog --wait
  gatewayctl status

Press Ctrl-C to stop everything.
MSG
wait -n "${AGENT_PIDS[@]}" "${FRONT_PIDS[@]}" "${BASE_PIDS[@]}" || true
echo "cluster.sh: a process exited unexpectedly; see $LOGS" >&2
