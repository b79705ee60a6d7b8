#!/usr/bin/env bash
# Installs gateway-cluster on this host: release binaries, systemd units, example configurations, the
# service user and an admin token. See docs/operations.md.
#
#   sudo scripts/install.sh                      build (release) and install under /usr/local
#   scripts/install.sh --dry-run                 print what it would do, change nothing
#   scripts/install.sh --bin-dir .build/debug    install binaries built already (no build)
#   DESTDIR=/tmp/pkg scripts/install.sh --prefix /usr   stage into a directory, for packaging
#
# Never overwrites an existing configuration file or admin token. Run it again to upgrade: binaries,
# units and docs are replaced, configurations and the token are kept.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/install.sh [options]

Options:
  --prefix DIR       Where binaries and docs go (default /usr/local): DIR/bin, DIR/share/doc/gateway-cluster.
  --destdir DIR      Stage everything under DIR (same as the DESTDIR environment variable). No user is
                     created and no ownership changed; the package's own scripts do that.
  --bin-dir DIR      Take the binaries from DIR instead of building them (e.g. .build/release).
  --config-dir DIR   Configuration directory (default /etc/gateway-cluster).
  --unit-dir DIR     systemd unit directory (default /etc/systemd/system).
  --user NAME        Service user and group (default gateway-cluster).
  --dynamic-stdlib   Build without --static-swift-stdlib (the binaries then need the Swift runtime
                     where it was at build time).
  --exclusivity-checks
                     Keep Swift's run-time exclusivity checks in the release build (off by default:
                     see docs/operations.md, "Building").
  --dry-run          Print what would be done; change nothing.
  -h, --help         Show this help.
USAGE
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/usr/local
DESTDIR=${DESTDIR:-}
BIN_DIR=""
CONFIG_DIR=/etc/gateway-cluster
UNIT_DIR=/etc/systemd/system
SERVICE_USER=gateway-cluster
STATIC=1
EXCLUSIVITY_CHECKS=0
DRY_RUN=0

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --destdir) DESTDIR=${2:?--destdir needs a directory}; shift 2 ;;
        --destdir=*) DESTDIR=${1#*=}; shift ;;
        --bin-dir) BIN_DIR=${2:?--bin-dir needs a directory}; shift 2 ;;
        --bin-dir=*) BIN_DIR=${1#*=}; shift ;;
        --config-dir) CONFIG_DIR=${2:?--config-dir needs a directory}; shift 2 ;;
        --config-dir=*) CONFIG_DIR=${1#*=}; shift ;;
        --unit-dir) UNIT_DIR=${2:?--unit-dir needs a directory}; shift 2 ;;
        --unit-dir=*) UNIT_DIR=${1#*=}; shift ;;
        --user) SERVICE_USER=${2:?--user needs a name}; shift 2 ;;
        --user=*) SERVICE_USER=${1#*=}; shift ;;
        --dynamic-stdlib) STATIC=0; shift ;;
        --exclusivity-checks) EXCLUSIVITY_CHECKS=1; shift ;;
        --dry-run|-n) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

for dir in "$PREFIX" "$CONFIG_DIR" "$UNIT_DIR"; do
    case $dir in /*) ;; *) echo "install.sh: $dir must be an absolute path" >&2; exit 2 ;; esac
done
DESTDIR=${DESTDIR%/}
if [ -n "$DESTDIR" ]; then
    case $DESTDIR in /*) ;; *) DESTDIR="$(pwd)/$DESTDIR" ;; esac
fi

SERVICES=(gateway-engine node-agent edge-balancer)
BINARIES=(gateway-engine node-agent edge-balancer gatewayctl)

log() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

# Runs a command, or prints it with --dry-run.
run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

# Ownership and users only make sense when installing for real into / as root.
MANAGE_OWNERS=1
if [ -n "$DESTDIR" ]; then
    MANAGE_OWNERS=0
elif [ "$(id -u)" -ne 0 ] && [ "$DRY_RUN" -eq 0 ]; then
    die "installing into / needs root (try sudo, or --destdir DIR, or --dry-run)"
fi

# --- 1. binaries -----------------------------------------------------------------------------------
if [ -z "$BIN_DIR" ]; then
    if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
        export PATH="/opt/swift/usr/bin:$PATH"
    fi
    command -v swift >/dev/null 2>&1 || die "swift not found (install Swift 6, or pass --bin-dir with prebuilt binaries)"
    build=(swift build --package-path "$ROOT" -c release)
    [ "$STATIC" -eq 1 ] && build+=(--static-swift-stdlib)
    # Exclusive access is still enforced at compile time; the run-time checks (a call and a thread-local
    # access set per dynamic access, about 12% of the data plane's instructions) stay in debug builds,
    # which the test suite runs. bench/lib.sh builds the same way.
    [ "$EXCLUSIVITY_CHECKS" -eq 0 ] && build+=(-Xswiftc -enforce-exclusivity=unchecked)
    for product in "${BINARIES[@]}"; do
        log "building $product (release)"
        run "${build[@]}" --product "$product"
    done
    if [ "$DRY_RUN" -eq 1 ]; then
        BIN_DIR="$ROOT/.build/release"
    else
        BIN_DIR=$("${build[@]}" --show-bin-path)
    fi
fi
case $BIN_DIR in /*) ;; *) BIN_DIR="$(pwd)/$BIN_DIR" ;; esac
if [ "$DRY_RUN" -eq 0 ]; then
    for binary in "${BINARIES[@]}"; do
        [ -x "$BIN_DIR/$binary" ] || die "$BIN_DIR/$binary is missing or not executable"
    done
fi

# --- 2. service user -------------------------------------------------------------------------------
if [ "$MANAGE_OWNERS" -eq 1 ]; then
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then
        log "user $SERVICE_USER exists"
    else
        log "creating system user $SERVICE_USER"
        nologin=/usr/sbin/nologin
        [ -x "$nologin" ] || nologin=/bin/false
        run useradd --system --user-group --no-create-home --home-dir /nonexistent --shell "$nologin" \
            --comment "gateway-cluster services" "$SERVICE_USER"
    fi
fi

# --- 3. files --------------------------------------------------------------------------------------
bin_target="$DESTDIR$PREFIX/bin"
doc_target="$DESTDIR$PREFIX/share/doc/gateway-cluster"
unit_target="$DESTDIR$UNIT_DIR"
config_target="$DESTDIR$CONFIG_DIR"

run install -d -m 0755 "$bin_target" "$unit_target" "$doc_target" "$doc_target/examples"
for binary in "${BINARIES[@]}"; do
    log "binary  $PREFIX/bin/$binary"
    run install -m 0755 "$BIN_DIR/$binary" "$bin_target/$binary"
done

# Units name /usr/local/bin, /etc/gateway-cluster, the user and the docs; rewrite them for this install.
for service in "${SERVICES[@]}"; do
    log "unit    $UNIT_DIR/$service.service"
    if [ "$DRY_RUN" -eq 1 ]; then
        echo "+ sed (paths, user) $ROOT/systemd/$service.service > $unit_target/$service.service"
    else
        sed -e "s#/usr/local/bin/#$PREFIX/bin/#g" \
            -e "s#/usr/local/share/doc/gateway-cluster/#$PREFIX/share/doc/gateway-cluster/#g" \
            -e "s#/etc/gateway-cluster/#$CONFIG_DIR/#g" \
            -e "s#^User=gateway-cluster\$#User=$SERVICE_USER#" \
            -e "s#^Group=gateway-cluster\$#Group=$SERVICE_USER#" \
            "$ROOT/systemd/$service.service" >"$unit_target/$service.service.tmp"
        chmod 0644 "$unit_target/$service.service.tmp"
        mv -f "$unit_target/$service.service.tmp" "$unit_target/$service.service"
    fi
done

log "docs    $PREFIX/share/doc/gateway-cluster/"
for doc in "$ROOT"/docs/*.md "$ROOT"/docs/*.yaml; do
    [ -f "$doc" ] && run install -m 0644 "$doc" "$doc_target/"
done
for example in "$ROOT"/docs/examples/* "$ROOT"/systemd/*.yaml; do
    [ -f "$example" ] && run install -m 0644 "$example" "$doc_target/examples/"
done

# Configuration: readable by the service group only (a redis.url may carry a password).
run install -d -m 0750 "$config_target"
if [ "$MANAGE_OWNERS" -eq 1 ]; then run chown "root:$SERVICE_USER" "$config_target"; fi
for service in "${SERVICES[@]}"; do
    target="$config_target/$service.yaml"
    if [ -e "$target" ]; then
        log "config  $CONFIG_DIR/$service.yaml exists; kept (the shipped example is in $PREFIX/share/doc/gateway-cluster/examples/)"
        continue
    fi
    log "config  $CONFIG_DIR/$service.yaml (example; edit it)"
    run install -m 0640 "$ROOT/systemd/$service.yaml" "$target"
    if [ "$MANAGE_OWNERS" -eq 1 ]; then run chown "root:$SERVICE_USER" "$target"; fi
done

# The admin token: root-only on disk; systemd hands it to each service as a credential (LoadCredential=).
token="$config_target/admin-token"
if [ -e "$token" ]; then
    log "token   $CONFIG_DIR/admin-token exists; kept"
else
    log "token   $CONFIG_DIR/admin-token (new, 0600)"
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+ (umask 077; head -c 32 /dev/urandom | base64 | tr -d %s > %s)\n' "'/+=\\n'" "$token"
    else
        (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$token")
        chmod 0600 "$token"
        [ "$(wc -c <"$token")" -ge 16 ] || die "could not generate a token in $token"
    fi
fi

# --- 4. what next ----------------------------------------------------------------------------------
[ "$DRY_RUN" -eq 1 ] && log "dry run: nothing was changed"
cat <<NEXT

gateway-cluster is installed${DESTDIR:+ under $DESTDIR}. Next:

  1. Edit the configurations in $CONFIG_DIR (redis.url everywhere; on engine hosts node.address,
     node.region, node.zone in node-agent.yaml; on edge hosts region in edge-balancer.yaml), and check
     each one, for example:
       $PREFIX/bin/gateway-engine --config $CONFIG_DIR/gateway-engine.yaml \\
         --set admin.tokenFile=$CONFIG_DIR/admin-token --check-config
  2. Use the same $CONFIG_DIR/admin-token on every host (gatewayctl uses one token for all admin APIs).
  3. Load the units and start the services this host runs:
       systemctl daemon-reload
       systemctl enable --now gateway-engine node-agent     # an engine host
       systemctl enable --now edge-balancer                  # an edge host
  4. Check:  systemctl status gateway-engine node-agent edge-balancer
             journalctl -u gateway-engine -f
             GATEWAYCTL_TOKEN_FILE=$CONFIG_DIR/admin-token $PREFIX/bin/gatewayctl status

Operations (drain, weights, purges, upgrades): $PREFIX/share/doc/gateway-cluster/operations.md
NEXT
