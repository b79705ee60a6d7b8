#!/usr/bin/env bash
# The test command: scripts/test.sh [swift test arguments...]
#
# 1. Installs what the tests need when it is missing (redis-server, redis-cli, hiredis headers, curl).
# 2. Starts a throwaway redis-server on a free loopback port and exports GC_TEST_REDIS_URL for the
#    tests that share one; most tests start their own servers (GatewayTesting.RedisServerProcess)
#    under GC_TEST_TMPDIR.
# 3. Runs `swift test` with the arguments given.
# 4. Stops that redis-server, kills any test server a crashed run left behind, removes the temporary
#    files, and exits with swift test's status, whether the tests passed or not. Interrupted or
#    terminated, it stops the tests first.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { echo "test.sh: $*" >&2; }

# --- Toolchain -------------------------------------------------------------------------------------
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
if ! command -v swift >/dev/null 2>&1; then
    log "swift not found on PATH or at /opt/swift/usr/bin"
    exit 1
fi

# --- System packages -------------------------------------------------------------------------------
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-cli)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v h2load >/dev/null 2>&1 || missing+=(h2load)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd-analyze)
/usr/bin/python3 -c "import seccomp" >/dev/null 2>&1 || missing+=(python3-seccomp)  # the sandbox test runs /usr/bin/python3
/usr/bin/python3 -c "import h2" >/dev/null 2>&1 || missing+=(python3-h2)  # an independent HTTP/2 client for the front's tests
/usr/bin/python3 -c "import websockets" >/dev/null 2>&1 || missing+=(python3-websockets)  # WebSocket client and backend for the tunnel tests
[ -f /usr/include/hiredis/hiredis.h ] || missing+=(hiredis-headers)
if [ ${#missing[@]} -gt 0 ]; then
    log "missing: ${missing[*]}; installing with apt-get"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server libhiredis-dev redis-tools curl openssl nghttp2-client systemd python3-seccomp python3-h2 python3-websockets
fi

# --- Cleanup, whatever happens next ----------------------------------------------------------------
workdir="$(mktemp -d "${TMPDIR:-/tmp}/gc-test.XXXXXX")"
redis_pid=""

# Kills `pid` only if it is still a redis-server (the number may have been reused).
kill_redis() {
    local pid="$1"
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q redis-server; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

test_pid=""

cleanup() {
    local status=$?
    stop_tests TERM
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    # Servers the tests started write redis.pid into their directory and delete it when they exit
    # normally; a pid file still there belongs to a server a crashed or killed test run left behind.
    local pidfile
    for pidfile in "$workdir"/servers/*/redis.pid; do
        [ -f "$pidfile" ] && kill_redis "$(cat "$pidfile")"
    done
    rm -rf "$workdir"
    exit "$status"
}
# Stops `swift test` and the test binary it started (their own process group, see below): TERM, then
# KILL if they are still there after 10 s.
stop_tests() {
    [ -n "$test_pid" ] || return 0
    kill -"$1" -- -"$test_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 -- -"$test_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- -"$test_pid" 2>/dev/null || true
    wait "$test_pid" 2>/dev/null || true
    test_pid=""
}
trap cleanup EXIT
trap 'stop_tests INT; exit 130' INT
trap 'stop_tests TERM; exit 143' TERM

# --- Shared redis-server ---------------------------------------------------------------------------
mkdir -p "$workdir/redis" "$workdir/servers"
port=""
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    candidate=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    # Started directly (not in a subshell, no cd) so that $! is redis-server's own PID.
    redis-server --port "$candidate" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$workdir/redis" --daemonize no --logfile "$workdir/redis/redis.log" &
    redis_pid=$!
    # Poll until it answers as itself (its process_id), exits, or 10 s pass.
    for _ in $(seq 1 200); do
        if ! kill -0 "$redis_pid" 2>/dev/null; then break; fi
        if redis-cli -p "$candidate" INFO server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$redis_pid"; then
            port="$candidate"
            break
        fi
        sleep 0.05
    done
    [ -n "$port" ] && break
    kill -KILL "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
    if ! grep -q "Address already in use" "$workdir/redis/redis.log" 2>/dev/null; then
        log "redis-server did not start:"
        tail -n 20 "$workdir/redis/redis.log" >&2 || true
        exit 1
    fi
    log "port $candidate is taken, trying another (attempt $attempt)"
    : >"$workdir/redis/redis.log"
done
if [ -z "$port" ]; then
    log "could not start redis-server on a free port"
    exit 1
fi
log "shared redis-server pid $redis_pid on 127.0.0.1:$port"

export GC_TEST_REDIS_URL="redis://127.0.0.1:$port"
export GC_TEST_TMPDIR="$workdir/servers"

# --- Tests -----------------------------------------------------------------------------------------
# In the background and in a process group of its own (job control on), so that when this script is
# interrupted or terminated (Ctrl-C, a CI timeout) the tests are stopped too instead of living on.
set +e
set -m
# Suites run one after another (--no-parallel): they start real Redis servers, engines, agents and
# balancers and assert on timing (convergence within 1 s, exact rate-limit counts); run side by side on
# 2 cores they mostly measure each other.
swift test --no-parallel "$@" &
test_pid=$!
set +m
wait "$test_pid"
status=$?
test_pid=""
set -e
exit "$status"
