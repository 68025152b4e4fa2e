#!/usr/bin/env bash
# Run the test suite (`make test`): every test, in two lanes side by side, each on a cluster of
# its own, so the real node's slow work (Odoo initializing, PostgreSQL starting) overlaps with
# the simulated cluster's (helm against the API server):
#
#   node lane: -m "realnode or odoo"   on the cluster $SAASODOO_CLUSTER_NAME (default saasodoo),
#                                      with its real node; kept afterwards (`make demo` uses it)
#   sim lane:  everything else         on the cluster $SAASODOO_CLUSTER_NAME-sim, without a
#                                      real node (SAASODOO_REAL_NODES=0); deleted afterwards
#
# The sim lane prints as it runs; the node lane's output goes to a log printed when both are
# done (and its path is said at the start). The exit status is the first failing lane's.
#
#   scripts/test.sh                 # both lanes
#   scripts/test.sh PYTEST_ARGS...  # one pytest with these arguments, on the default cluster
#   SAASODOO_TEST_LANES=1 scripts/test.sh   # every test in one pytest, one after another
#
# Both lanes need nothing the other holds: each has its own cluster, local servers take free
# ports, and the real node exists once (only the node lane's cluster has it).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON=${PYTHON:-$REPO_ROOT/.venv/bin/python}
CLUSTER=${SAASODOO_CLUSTER_NAME:-saasodoo}
NODE_MARKERS="realnode or odoo"
cd "$REPO_ROOT"

if (($# > 0)) || [[ ${SAASODOO_TEST_LANES:-2} == 1 ]] ||
  [[ -n ${SAASODOO_KUBECONFIG:-} || -n ${KUBECONFIG:-} ]]; then
  # Selected tests, one lane asked for, or a cluster of the caller's: one pytest.
  exec "$PYTHON" -m pytest "$@"
fi

logs=${SAASODOO_TEST_LOGS:-$(dirname "$TOOLS_DIR")/test-logs}
mkdir -p "$logs"
node_log=$logs/node-lane.log
sim_cluster=$CLUSTER-sim

info "two lanes: the node lane (-m \"$NODE_MARKERS\", cluster '$CLUSTER', log $node_log) and the sim lane (the rest, cluster '$sim_cluster')"
start=$SECONDS
SAASODOO_CLUSTER_NAME=$CLUSTER "$PYTHON" -m pytest -m "$NODE_MARKERS" -p no:cacheprovider --durations=25 \
  >"$node_log" 2>&1 &
node_pid=$!
stop_node_lane() { kill "$node_pid" 2>/dev/null || true; }
trap stop_node_lane INT TERM

sim_rc=0
SAASODOO_CLUSTER_NAME=$sim_cluster SAASODOO_REAL_NODES=0 \
  "$PYTHON" -m pytest -m "not ($NODE_MARKERS)" --durations=25 || sim_rc=$?
info "sim lane done in $((SECONDS - start))s (exit $sim_rc); deleting its cluster"
SAASODOO_CLUSTER_NAME=$sim_cluster SAASODOO_REAL_NODES=0 scripts/cluster.sh down || true

node_rc=0
wait "$node_pid" || node_rc=$?
trap - INT TERM
info "node lane done in $((SECONDS - start))s (exit $node_rc); its output:"
cat "$node_log"

if ((sim_rc != 0)); then exit "$sim_rc"; fi
exit "$node_rc"
