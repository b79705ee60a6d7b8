# Shared by the benchmark scripts (source it after `set -euo pipefail`): a temporary directory, the
# processes a script starts and their cleanup, free ports, HTTP readiness, CPU time.
#
#   bench_init NAME      makes $TMP (/tmp/gc-bench-NAME.XXXXXX), empties PIDS, sets the EXIT/INT/TERM traps.
#                        Add every background process's pid to PIDS; KEEP_TMP=1 keeps $TMP for a look.
#   bench_build PRODUCT  builds PRODUCT as operators deploy it and sets BIN to its path (see below).
#   bench_need CMD:PKG…  installs with apt-get the package of every command that is missing (see below).

# Each argument is COMMAND:PACKAGE (PACKAGE is installed when COMMAND is not on the PATH) or
# pkg-config=MODULE:PACKAGE (when pkg-config does not know MODULE). Installs through sudo when not root;
# when the install fails, tries again with nginx as nginx-light (some releases only have that one).
bench_need() {  # spec...
  local need=() spec check pkg
  for spec in "$@"; do
    check="${spec%%:*}" pkg="${spec#*:}"
    case "$check" in
      pkg-config=*) pkg-config --exists "${check#pkg-config=}" 2>/dev/null || need+=("$pkg") ;;
      *) command -v "$check" >/dev/null || need+=("$pkg") ;;
    esac
  done
  [ ${#need[@]} -gt 0 ] || return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; then
    local alt=("${need[@]/#nginx/nginx-light}")
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${alt[@]}"
  fi
}

# The build operators deploy (scripts/install.sh): release, Swift runtime linked statically, run-time
# exclusivity checks off, in scratch .build-unchecked. EXCLUSIVITY=checked keeps the run-time exclusivity
# checks (install.sh --exclusivity-checks), in .build-static. STDLIB=dynamic builds against the shared
# runtime instead, in .build-release-unchecked or .build-release (slower: calls into the runtime, retain and
# release above all, go through the PLT, and its thread-local reads through __tls_get_addr). SCRATCH
# overrides the scratch path. Sets BIN and BUILD_DESCRIPTION.
bench_build() {  # product
  local flags=(-c release)
  case "${EXCLUSIVITY:=unchecked}" in
    unchecked) flags+=(-Xswiftc -enforce-exclusivity=unchecked) ;;
    checked) ;;
    *) echo "EXCLUSIVITY must be unchecked or checked, not '$EXCLUSIVITY'" >&2; exit 2 ;;
  esac
  case "${STDLIB:=static}" in
    static) flags+=(--static-swift-stdlib) ;;
    dynamic) ;;
    *) echo "STDLIB must be static or dynamic, not '$STDLIB'" >&2; exit 2 ;;
  esac
  case "$STDLIB/$EXCLUSIVITY" in
    static/unchecked) SCRATCH="${SCRATCH:-.build-unchecked}" ;;
    static/checked) SCRATCH="${SCRATCH:-.build-static}" ;;
    dynamic/unchecked) SCRATCH="${SCRATCH:-.build-release-unchecked}" ;;
    dynamic/checked) SCRATCH="${SCRATCH:-.build-release}" ;;
  esac
  flags+=(--scratch-path "$SCRATCH")
  echo "building $1 (release, $STDLIB Swift runtime, exclusivity $EXCLUSIVITY at run time, scratch $SCRATCH; waits if another build holds the lock)..." >&2
  swift build "${flags[@]}" --product "$1" 2>&1 | grep -E "error:|Build (of product .*)?complete" | tail -3 >&2 || true
  BIN="$(swift build "${flags[@]}" --show-bin-path)/$1"
  local checks="off"; [ "$EXCLUSIVITY" = checked ] && checks="on"
  BUILD_DESCRIPTION="release, $STDLIB Swift runtime, run-time exclusivity checks $checks ($SCRATCH)"
  [ -x "$BIN" ] || { echo "no $1 binary at $BIN" >&2; exit 1; }
}

bench_init() {  # name
  TMP="$(mktemp -d "/tmp/gc-bench-$1.XXXXXX")"
  chmod 755 "$TMP"
  PIDS=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {  # every process in PIDS: TERM, then KILL after 5 s; then $TMP goes
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}

forget() {  # pid: drop from PIDS
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

stop() {  # pid: TERM, then KILL after 5 s, and forget it
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget "$pid"
}

# Starts a three-master Redis Cluster on free loopback ports under $TMP: the slots split evenly, each
# node's cluster bus on a free port of its own (the default, port + 10000, is past 65535 for high
# ports). Adds the servers to PIDS, sets REDIS_CLUSTER_PORTS, and returns once every node says
# cluster_state:ok and knows the other two.
bench_redis_cluster() {
  local i p bus ok info buses=()
  REDIS_CLUSTER_PORTS=()
  for i in 0 1 2; do
    p=$(free_port); bus=$(free_port)
    mkdir -p "$TMP/redis-$p"
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP/redis-$p" --daemonize no \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$bus" >"$TMP/redis-$p.log" 2>&1 &
    PIDS+=($!)
    REDIS_CLUSTER_PORTS+=("$p"); buses+=("$bus")
  done
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
  redis-cli -p "${REDIS_CLUSTER_PORTS[0]}" cluster addslotsrange 0 5460 >/dev/null
  redis-cli -p "${REDIS_CLUSTER_PORTS[1]}" cluster addslotsrange 5461 10922 >/dev/null
  redis-cli -p "${REDIS_CLUSTER_PORTS[2]}" cluster addslotsrange 10923 16383 >/dev/null
  for i in 1 2; do
    redis-cli -p "${REDIS_CLUSTER_PORTS[0]}" cluster meet 127.0.0.1 "${REDIS_CLUSTER_PORTS[$i]}" "${buses[$i]}" >/dev/null
  done
  for _ in $(seq 300); do
    ok=1
    for p in "${REDIS_CLUSTER_PORTS[@]}"; do
      info=$(redis-cli -p "$p" cluster info)
      grep -q 'cluster_state:ok' <<<"$info" && grep -q 'cluster_known_nodes:3' <<<"$info" || ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.1
  done
  echo "the Redis Cluster did not form; see $TMP/redis-*.log" >&2
  exit 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {  # url [expected status] [log to show on failure] [curl options...]: up to 20 s
  local url="$1" want="${2:-200}" log="${3:-}" code=""
  shift 3 || shift $#
  for _ in $(seq 200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$@" "$url" 2>/dev/null || true)
    [ "$code" = "$want" ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $url ($want, last $code)" >&2
  [ -n "$log" ] && tail -20 "$log" >&2
  return 1
}

cpu_ticks() {  # pid: user+system clock ticks of it and its direct children (NGINX's workers)
  local total=0 p
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(sed -E 's/^.*\) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}
HZ=$(getconf CLK_TCK)
