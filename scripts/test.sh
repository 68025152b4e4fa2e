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
#   scripts/test.sh --build [...]   # build the pinned tools and images first (`make test`)
#
# With --build (`make test`), the tools (scripts/install-tools.sh) and the real node's images
# (images/build.sh) are built or reused as by `make tools`; for the three lanes they build
# staged: the node lane, the longest, starts as soon as its tools (NODE_LANE_TOOLS,
# scripts/lib.sh) and the images are in, while the others still build; the sim lanes start
# once every tool is in. A tool that fails to build stops everything (the node lane too) and
# fails the run, naming the tool.
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

build=false
if [[ ${1:-} == --build ]]; then
  build=true
  shift
fi
real_nodes() { [[ ${SAASODOO_REAL_NODES:-1} != 0 ]]; }

if (($# > 0)) || [[ ${SAASODOO_TEST_LANES:-3} == 1 ]] ||
  [[ -n ${SAASODOO_KUBECONFIG:-} || -n ${KUBECONFIG:-} ]]; then
  # Selected tests, one lane asked for, or a cluster of the caller's: one pytest, after every
  # tool and image (`make tools`).
  if $build; then make --no-print-directory tools; fi
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
pids=() builds=() status="" images_pid=""
# stop_all: every lane and build, each its process group (quietly: no job notices).
stop_all() {
  local pid
  { for pid in "${pids[@]}" "${builds[@]}"; do kill -TERM -- "-$pid" || true; done
    wait
    jobs; } >/dev/null 2>&1 || true
  [[ -z $status ]] || rm -rf "$status"
}
stop_lanes() {
  trap - INT TERM
  err "stopped by SIG$1: stopping the lanes (and builds), deleting the simulated clusters"
  local lane
  stop_all
  for lane in sim sim2; do
    SAASODOO_CLUSTER_NAME=$CLUSTER-$lane SAASODOO_REAL_NODES=0 scripts/cluster.sh down || true
  done
  if [[ $1 == INT ]]; then exit 130; fi
  exit 143
}
trap 'stop_lanes INT' INT
trap 'stop_lanes TERM' TERM

if $build; then
  # The tools in two build lanes (scripts/install-tools.sh), their results in $status as they
  # come; the images (network and disk bound) beside them, as `make tools` does.
  status=$(mktemp -d)
  read -r -a all_tools <<<"$(scripts/install-tools.sh --names)"
  SAASODOO_TOOLS_STATUS=$status scripts/install-tools.sh &
  tools_pid=$!
  builds+=("$tools_pid")
  if real_nodes; then
    images/build.sh pause postgres odoo busybox >"$logs/images.log" 2>&1 &
    images_pid=$!
    builds+=("$images_pid")
  fi
fi

# tools_failed: stop what runs, say which tools failed (their build printed why) and exit 1.
tools_failed() {
  trap - INT TERM
  err "$1"
  stop_all
  exit 1
}

# check_images [wait]: 0 once the images are built (or none are built here); 1 while they
# build (`wait`: waits for them); their build failed: tools_failed.
images_done=false
check_images() {
  if [[ -z $images_pid ]] || $images_done; then return 0; fi
  if [[ ${1:-} != wait ]] && kill -0 "$images_pid" 2>/dev/null; then return 1; fi
  if wait "$images_pid"; then
    images_done=true
    grep -v '=' "$logs/images.log" >&2 || true
    return 0
  fi
  cat "$logs/images.log" >&2
  tools_failed "images: build FAILED (images/build.sh, its output above); no test lane runs"
}

# wait_tools WHAT TOOL...: until each TOOL is built (its status 0). Any tool failed (not only
# these), or the build gone without them: tools_failed, saying WHAT. A failed images build
# stops it too.
wait_tools() {
  local what=$1 t alive pending failed
  shift
  while :; do
    check_images || true
    alive=true
    kill -0 "$tools_pid" 2>/dev/null || alive=false
    pending=() failed=()
    for t in "${all_tools[@]}"; do
      [[ $(cat "$status/$t" 2>/dev/null) != 1 ]] || failed+=("$t")
    done
    for t in "$@"; do
      [[ $(cat "$status/$t" 2>/dev/null) == 0 ]] || pending+=("$t")
    done
    ((${#failed[@]} == 0)) || tools_failed "tool build FAILED: ${failed[*]} (its log above); $what"
    ((${#pending[@]} > 0)) || return 0
    $alive || tools_failed "tools not built: ${pending[*]} (scripts/install-tools.sh ended without them); $what"
    sleep 2
  done
}

if $build; then
  info "node lane: waiting for its tools (${NODE_LANE_TOOLS[*]})$(real_nodes && echo " and the images") (t=$((SECONDS - start))s)"
  wait_tools "no test lane runs" "${NODE_LANE_TOOLS[@]}"
  check_images wait
fi

info "three lanes: node (-m \"$NODE_MARKERS\", cluster '$CLUSTER', log $logs/node-lane.log), sim2 (tests/cluster, cluster '$CLUSTER-sim2', log $logs/sim2-lane.log) and sim (the rest, cluster '$CLUSTER-sim', below)"
info "node lane: starting (t=$((SECONDS - start))s)"
SAASODOO_CLUSTER_NAME=$CLUSTER "$PYTHON" -m pytest -m "$NODE_MARKERS" -p no:cacheprovider \
  --durations=25 >"$logs/node-lane.log" 2>&1 &
pids+=($!)

if $build; then
  info "sim lanes: waiting for every tool (t=$((SECONDS - start))s)"
  wait_tools "the node lane is stopped" "${all_tools[@]}"
  wait "$tools_pid" || tools_failed "scripts/install-tools.sh failed (above); the node lane is stopped"
  rm -rf "$status"
  builds=()
fi
info "sim lanes: starting (t=$((SECONDS - start))s)"
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
