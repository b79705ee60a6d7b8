#!/usr/bin/env bash
# Runs a local gateway-cluster on loopback: Redis, and for each region its nodes (engine + agent) and an
# edge balancer. Ctrl-C (or SIGTERM) stops every process it started; nothing is left running.
#
#   scripts/cluster.sh            build (release) if needed, start, wait for Ctrl-C
#   CLUSTER_BUILD=debug scripts/cluster.sh
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
pkg-config --exists hiredis 2>/dev/null || need+=(libhiredis-dev pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- one cluster at a time -----------------------------------------------------------------------
mkdir -p "$RUN_DIR"
exec 9>"$RUN_DIR/.lock"
if ! flock -n 9; then
  echo "cluster.sh: a local cluster is already running from $ROOT (lock $RUN_DIR/.lock); stop it with Ctrl-C first." >&2
  exit 1
fi

REDIS_PORT=6399
# name:admin-port pairs of what we start; ports must be free before anything starts.
ENGINES=("engine-eu-1:9111" "engine-eu-2:9112" "engine-us-1:9113")
AGENTS=("agent-eu-1:9211" "agent-eu-2:9212" "agent-us-1:9213")
BALANCERS=("balancer-eu:9311" "balancer-us:9312")
PORTS=("$REDIS_PORT")
for e in "${ENGINES[@]}" "${AGENTS[@]}" "${BALANCERS[@]}"; do PORTS+=("${e##*:}"); done
busy=()
for p in "${PORTS[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then busy+=("$p"); fi
done
if [ ${#busy[@]} -gt 0 ]; then
  echo "cluster.sh: port(s) already in use on 127.0.0.1: ${busy[*]}; free them and try again. Nothing was started." >&2
  exit 1
fi

echo "building ($CONFIG)..."
swift build -c "$CONFIG" --product gateway-engine >/dev/null
swift build -c "$CONFIG" --product node-agent >/dev/null
swift build -c "$CONFIG" --product edge-balancer >/dev/null
swift build -c "$CONFIG" --product gatewayctl >/dev/null
BIN=$(swift build -c "$CONFIG" --show-bin-path)

TOKEN_FILE="$RUN_DIR/admin-token"
[ -s "$TOKEN_FILE" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$TOKEN_FILE"
chmod 600 "$TOKEN_FILE"
LOGS="$RUN_DIR/logs"; mkdir -p "$LOGS" "$RUN_DIR/redis"

PIDS=()
stop_all() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo "stopped."
}
trap stop_all INT TERM EXIT

start() { # name, command...
  local name=$1; shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  PIDS+=("$!")
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

start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN_DIR/redis"
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
COMMON=(--set "redis.url=redis://127.0.0.1:$REDIS_PORT" --set "admin.tokenFile=$TOKEN_FILE")

for e in "${ENGINES[@]}"; do start "${e%%:*}" "$BIN/gateway-engine" "${COMMON[@]}" --set "admin.port=${e##*:}"; done
for a in "${AGENTS[@]}"; do start "${a%%:*}" "$BIN/node-agent" "${COMMON[@]}" --set "admin.port=${a##*:}"; done
for b in "${BALANCERS[@]}"; do start "${b%%:*}" "$BIN/edge-balancer" "${COMMON[@]}" --set "admin.port=${b##*:}"; done
for s in "${ENGINES[@]}" "${AGENTS[@]}" "${BALANCERS[@]}"; do wait_http "http://127.0.0.1:${s##*:}/health" "${s%%:*}"; done

cat <<MSG

gateway-cluster is running (logs in $LOGS, admin token in $TOKEN_FILE).

  Redis            redis://127.0.0.1:$REDIS_PORT
  engines (admin)  $(for e in "${ENGINES[@]}"; do printf 'http://127.0.0.1:%s  ' "${e##*:}"; done)
  agents  (admin)  $(for a in "${AGENTS[@]}"; do printf 'http://127.0.0.1:%s  ' "${a##*:}"; done)
  balancers(admin) $(for b in "${BALANCERS[@]}"; do printf 'http://127.0.0.1:%s  ' "${b##*:}"; done)

Try:
  curl http://127.0.0.1:9111/health
  curl -H "Authorization: Bearer \$(cat $TOKEN_FILE)" http://127.0.0.1:9111/metrics
  $BIN/gatewayctl health http://127.0.0.1:9311

Press Ctrl-C to stop everything.
MSG
wait -n "${PIDS[@]}" || true
echo "cluster.sh: a process exited unexpectedly; see $LOGS" >&2
