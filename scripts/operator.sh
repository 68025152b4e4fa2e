#!/usr/bin/env bash
# The OdooTenant operator as a local background process beside the simulated cluster (until
# the platform chart runs it in the cluster): `saasodoo operator run --install-crds --adopt`.
#
#   scripts/operator.sh start    # idempotent; log in the cluster's state dir
#   scripts/operator.sh stop     # SIGTERM: work finishes or is cancelled, the Lease released
#   scripts/operator.sh status
#
# Settings come from SAASODOO_* in the environment (the Makefile passes the cluster's
# kubeconfig and the pinned helm). `scripts/cluster.sh down` stops it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER=${SAASODOO_CLUSTER_NAME:-saasodoo}
KWOK_WORKDIR=${SAASODOO_KWOK_WORKDIR:-$(dirname "$TOOLS_DIR")/kwok}
CLUSTER_DIR=$KWOK_WORKDIR/clusters/$CLUSTER
PIDFILE=$CLUSTER_DIR/pids/saasodoo-operator.pid
LOG=$CLUSTER_DIR/logs/saasodoo-operator.log
SAASODOO=${SAASODOO:-$REPO_ROOT/.venv/bin/saasodoo}

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

cmd_start() {
  if running; then
    info "operator running (pid $(cat "$PIDFILE"), log $LOG)"
    return 0
  fi
  [[ -d $CLUSTER_DIR ]] || { err "cluster '$CLUSTER' does not exist (make cluster)"; exit 1; }
  mkdir -p "$(dirname "$PIDFILE")" "$(dirname "$LOG")"
  info "starting the operator (log: $LOG)"
  # The operator's placement setting is the platform's; a tenant's own comes from its spec.
  SAASODOO_NODE_POOL= setsid "$SAASODOO" operator run --install-crds --adopt \
    >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + 60))
  until grep -q " leads" "$LOG" 2>/dev/null; do
    running || { err "the operator exited:"; tail -n 20 "$LOG" >&2; exit 1; }
    ((SECONDS < deadline)) || { err "the operator did not lead within 60s; see $LOG"; exit 1; }
    sleep 0.5
  done
  info "operator leads (pid $(cat "$PIDFILE"))"
}

cmd_stop() {
  if running; then
    local pid
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    info "operator stopped"
  fi
  rm -f "$PIDFILE"
}

cmd_status() {
  if running; then
    echo "operator running (pid $(cat "$PIDFILE")), log $LOG"
  else
    echo "operator not running"
    exit 1
  fi
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
