#!/usr/bin/env bash
# Run the test suite (`make test`): every test, in three lanes side by side, each on a cluster
# of its own, so the real node's slow work (Odoo initializing, PostgreSQL starting) and the
# simulated clusters' (helm against an API server, mostly waiting) overlap:
#
#   node lane:  -m "realnode or odoo"   on the cluster $SAASODOO_CLUSTER_NAME (default saasodoo),
#                                       with its real node; kept afterwards (`make demo` uses it)
#   sim lane:   the rest but tests/cluster, on $SAASODOO_CLUSTER_NAME-sim, no real node
#   sim2 lane:  tests/cluster (the rest), on $SAASODOO_CLUSTER_NAME-sim2, no real node
#
# The simulated clusters are deleted at their lane's end. The sim lane prints as it runs; the
# other lanes' output goes to logs printed when all are done (their paths are said at the
# start). The exit status is the first failing lane's.
#
#   scripts/test.sh                 # the three lanes
#   scripts/test.sh PYTEST_ARGS...  # one pytest with these arguments, on the default cluster
#   SAASODOO_TEST_LANES=1 scripts/test.sh   # every test in one pytest, one after another
#
# The lanes share nothing: each has its own cluster, local servers take free ports, and the
# real node exists once (only the node lane's cluster has it).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON=${PYTHON:-$REPO_ROOT/.venv/bin/python}
CLUSTER=${SAASODOO_CLUSTER_NAME:-saasodoo}
NODE_MARKERS="realnode or odoo"
cd "$REPO_ROOT"

if (($# > 0)) || [[ ${SAASODOO_TEST_LANES:-3} == 1 ]] ||
  [[ -n ${SAASODOO_KUBECONFIG:-} || -n ${KUBECONFIG:-} ]]; then
  # Selected tests, one lane asked for, or a cluster of the caller's: one pytest.
  exec "$PYTHON" -m pytest "$@"
fi

logs=${SAASODOO_TEST_LOGS:-$(dirname "$TOOLS_DIR")/test-logs}
mkdir -p "$logs"
SIM_MARKERS="not ($NODE_MARKERS)"
start=$SECONDS
# Job control: each lane runs in a process group of its own, so a stop (Ctrl-C, SIGTERM from
# CI) reaches every process of every lane, pytest's children included; the simulated clusters
# are deleted then too (the node lane's is kept, as after a run).
set -m
pids=()
stop_lanes() {
  trap - INT TERM
  err "stopped by SIG$1: stopping the lanes, deleting the simulated clusters"
  local pid lane
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for lane in sim sim2; do
    SAASODOO_CLUSTER_NAME=$CLUSTER-$lane SAASODOO_REAL_NODES=0 scripts/cluster.sh down || true
  done
  if [[ $1 == INT ]]; then exit 130; fi
  exit 143
}
trap 'stop_lanes INT' INT
trap 'stop_lanes TERM' TERM

info "three lanes: node (-m \"$NODE_MARKERS\", cluster '$CLUSTER', log $logs/node-lane.log), sim2 (tests/cluster, cluster '$CLUSTER-sim2', log $logs/sim2-lane.log) and sim (the rest, cluster '$CLUSTER-sim', below)"
SAASODOO_CLUSTER_NAME=$CLUSTER "$PYTHON" -m pytest -m "$NODE_MARKERS" -p no:cacheprovider \
  --durations=25 >"$logs/node-lane.log" 2>&1 &
pids+=($!)
( rc=0
  SAASODOO_CLUSTER_NAME=$CLUSTER-sim2 SAASODOO_REAL_NODES=0 "$PYTHON" -m pytest -m "$SIM_MARKERS" \
    -p no:cacheprovider --durations=25 tests/cluster || rc=$?
  SAASODOO_CLUSTER_NAME=$CLUSTER-sim2 SAASODOO_REAL_NODES=0 scripts/cluster.sh down || true
  exit "$rc" ) >"$logs/sim2-lane.log" 2>&1 &
pids+=($!)

sim_rc=0
# In the background too (its own process group; its output here): `wait` returns on a stop.
SAASODOO_CLUSTER_NAME=$CLUSTER-sim SAASODOO_REAL_NODES=0 \
  "$PYTHON" -m pytest -m "$SIM_MARKERS" --ignore=tests/cluster --durations=25 &
pids+=($!)
wait "${pids[2]}" || sim_rc=$?
info "sim lane done in $((SECONDS - start))s (exit $sim_rc); deleting its cluster"
SAASODOO_CLUSTER_NAME=$CLUSTER-sim SAASODOO_REAL_NODES=0 scripts/cluster.sh down || true

sim2_rc=0 node_rc=0
wait "${pids[1]}" || sim2_rc=$?
info "sim2 lane done in $((SECONDS - start))s (exit $sim2_rc); its output:"
cat "$logs/sim2-lane.log"
wait "${pids[0]}" || node_rc=$?
trap - INT TERM
info "node lane done in $((SECONDS - start))s (exit $node_rc); its output:"
cat "$logs/node-lane.log"

for rc in "$sim_rc" "$sim2_rc" "$node_rc"; do
  if ((rc != 0)); then exit "$rc"; fi
done
exit 0
