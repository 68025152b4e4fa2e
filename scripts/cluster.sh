#!/usr/bin/env bash
# The simulated Kubernetes cluster for development and tests.
#
#   scripts/cluster.sh up          # start or reuse it; prints the kubeconfig path on stdout
#   scripts/cluster.sh status      # server version, nodes, storage and ingress classes
#   scripts/cluster.sh kubeconfig  # print the kubeconfig path
#   scripts/cluster.sh down        # stop it and remove all of its state
#
# kwokctl's binary runtime runs the real etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler built by scripts/install-tools.sh,
# all bound to 127.0.0.1; kwok simulates the kubelets of SAASODOO_NODES fake
# nodes (default 3). No container runs: pods are scheduled for real and then
# marked Running/Ready by kwok. The harness adds what a bare control plane
# lacks: a default StorageClass whose PVCs really bind (scripts/kwok_provisioner.py),
# IngressClass `traefik` and namespace `traefik`. Next to the fake nodes run
# SAASODOO_REAL_NODES real nodes (default 1; 0: none): a real kubelet with containerd, so
# tenants that tolerate them run for real (scripts/realnode.sh; needs root). kwokctl also runs metrics-server
# (built by scripts/install-tools.sh), so the metrics.k8s.io API serves the CPU and
# memory kwok simulates for every pod: by default 20m CPU and 64Mi per container, or
# the pod's annotations kwok.x-k8s.io/usage-cpu / kwok.x-k8s.io/usage-memory. A
# cluster created before metrics-server was added has no metrics API: `up` says so;
# `scripts/cluster.sh down && scripts/cluster.sh up` (make cluster-down cluster) fixes it.
#
# With SAASODOO_KUBECONFIG or KUBECONFIG set, `up` and `status` use that cluster
# instead and start nothing.
#
# Environment: SAASODOO_CLUSTER_NAME (default saasodoo), SAASODOO_NODES (3), SAASODOO_REAL_NODES (1),
# SAASODOO_KWOK_WORKDIR (state, default ~/.cache/saasodoo/kwok), PYTHON (a python
# with the kubernetes client, default .venv/bin/python).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER=${SAASODOO_CLUSTER_NAME:-saasodoo}
NODES=${SAASODOO_NODES:-3}
REAL_NODES=${SAASODOO_REAL_NODES:-1}
export KWOK_WORKDIR=${SAASODOO_KWOK_WORKDIR:-$(dirname "$TOOLS_DIR")/kwok}
CLUSTER_DIR=$KWOK_WORKDIR/clusters/$CLUSTER
KUBECONFIG_PATH=$CLUSTER_DIR/kubeconfig.yaml
PYTHON=${PYTHON:-$REPO_ROOT/.venv/bin/python}
KWOKCTL=$(tool_bin kwok kwokctl)
KUBECTL=$(tool_bin kubernetes kubectl)
PROVISIONER_PID=$CLUSTER_DIR/pids/saasodoo-provisioner.pid
PROVISIONER_LOG=$CLUSTER_DIR/logs/saasodoo-provisioner.log
# The apiserver's address for pods (scripts/realnode.sh, API_ADDRESS: a host of its own).
API_ADVERTISE_ADDRESS=10.250.1.1

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
kwokctl() { "$KWOKCTL" --name "$CLUSTER" "$@"; }

require_tools() {
  local missing=()
  for b in "$KWOKCTL" "$(tool_bin kwok kwok)" "$KUBECTL" "$(tool_bin etcd etcd)" \
    "$(tool_bin kubernetes kube-apiserver)" "$(tool_bin kubernetes kube-controller-manager)" \
    "$(tool_bin kubernetes kube-scheduler)" "$(tool_bin metrics-server metrics-server)"; do
    [[ -x $b ]] || missing+=("$b")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    err "missing tools: ${missing[*]}"
    err "build them first: scripts/install-tools.sh (or make tools)"
    exit 1
  fi
}

apiserver_ready() {
  [[ -f $KUBECONFIG_PATH ]] && kubectl get --raw /readyz >/dev/null 2>&1
}

create_cluster() {
  info "creating cluster '$CLUSTER' (kwokctl, binary runtime, Kubernetes $KUBERNETES_VERSION) in $CLUSTER_DIR"
  # The config lives outside kwokctl's clusters directory (a file there makes kwokctl warn
  # "Found non-directory entry in clusters directory"). The here-document expands $(...) and
  # backquotes: its comments must hold neither (a quoted command in one ran
  # "kwokctl scale node" against the cluster not created yet, whose "Cluster does not exist"
  # and ERROR lines a newcomer read as a failure).
  local scratch
  scratch=$(mktemp -d)
  local config=$scratch/kwokctl.yaml
  cat >"$config" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeVersion: $KUBERNETES_VERSION
  kubectlBinary: $KUBECTL
  kubeApiserverBinary: $(tool_bin kubernetes kube-apiserver)
  kubeControllerManagerBinary: $(tool_bin kubernetes kube-controller-manager)
  kubeSchedulerBinary: $(tool_bin kubernetes kube-scheduler)
  etcdBinary: $(tool_bin etcd etcd)
  kwokControllerBinary: $(tool_bin kwok kwok)
  enableMetricsServer: true
  metricsServerBinary: $(tool_bin metrics-server metrics-server)
  metricsServerManifests:
  - $(tool_dir metrics-server)/manifests/base
  # Pods reach the apiserver as in any cluster: through Service kubernetes (10.96.0.1:443,
  # kubernetes.default.svc), whose endpoint is the apiserver's own address for pods
  # (advertise-address below), with TLS its certificate must pass for both.
  kubeApiserverCertSANs: [10.96.0.1, $API_ADVERTISE_ADDRESS]
# The fake nodes' InternalIPs (192.0.2.x) lead nowhere; their Hostname (localhost) reaches
# kwok, which serves each node's /metrics/resource.
componentsPatches:
- name: metrics-server
  extraArgs:
  - key: kubelet-preferred-address-types
    value: Hostname
    override: true
# The apiserver's default Service range is a /24: ~250 tenants (one ClusterIP each). A /16
# holds the 1,000-tenant benchmark and more.
- name: kube-apiserver
  extraArgs:
  - key: service-cluster-ip-range
    value: 10.96.0.0/16
  # Real nodes (scripts/realnode.sh): logs, exec and port-forward reach their kubelet at its
  # InternalIP with the cluster's admin certificate, which the kubelet's webhook authz accepts.
  - key: kubelet-client-certificate
    value: $CLUSTER_DIR/pki/admin.crt
  - key: kubelet-client-key
    value: $CLUSTER_DIR/pki/admin.key
  - key: kubelet-preferred-address-types
    value: InternalIP,Hostname
  # The address Service kubernetes's endpoints name (the apiserver itself listens on
  # 127.0.0.1 only): a private address on a network namespace of its own, where
  # scripts/realnode.sh relays TCP to the apiserver (nothing listens there without a real node).
  - key: advertise-address
    value: $API_ADVERTISE_ADDRESS
# kwok simulates only the nodes that "kwokctl scale node" made (annotated kwok.x-k8s.io/node=fake)
# and leaves real nodes and their pods to their kubelet.
- name: kwok-controller
  extraArgs:
  - key: manage-all-nodes
    value: "false"
    override: true
  - key: manage-nodes-with-annotation-selector
    value: kwok.x-k8s.io/node=fake
---
# Simulated usage behind metrics.k8s.io: a pod's annotations, else a small constant.
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterResourceUsage
metadata:
  name: usage-from-annotation
spec:
  usages:
  - usage:
      cpu:
        expression: |
          "kwok.x-k8s.io/usage-cpu" in pod.metadata.annotations
          ? Quantity(pod.metadata.annotations["kwok.x-k8s.io/usage-cpu"])
          : Quantity("20m")
      memory:
        expression: |
          "kwok.x-k8s.io/usage-memory" in pod.metadata.annotations
          ? Quantity(pod.metadata.annotations["kwok.x-k8s.io/usage-memory"])
          : Quantity("64Mi")
EOF
  if ! kwokctl create cluster --config "$config" --kubeconfig "" --wait 3m -v WARN >&2; then
    err "kwokctl create cluster failed; component logs are in $CLUSTER_DIR/logs"
    rm -rf "$scratch"
    exit 1
  fi
  rm -rf "$scratch"
  info "cluster '$CLUSTER' created"
}

# The extras a bare control plane lacks (idempotent: server-side apply).
apply_addons() {
  info "applying StorageClass 'standard' (default), IngressClass 'traefik', namespace 'traefik'"
  kubectl apply --server-side --field-manager=saasodoo-harness -f - >/dev/null <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: saasodoo.dev/kwok-provisioner
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: traefik
spec:
  controller: traefik.io/ingress-controller
---
apiVersion: v1
kind: Namespace
metadata:
  name: traefik
EOF
}

provisioner_running() {
  [[ -f $PROVISIONER_PID ]] && kill -0 "$(cat "$PROVISIONER_PID")" 2>/dev/null
}

start_provisioner() {
  if provisioner_running; then
    return 0
  fi
  [[ -x $PYTHON ]] || { err "no python with the kubernetes client at $PYTHON (run make venv or set PYTHON)"; exit 1; }
  info "starting the volume provisioner (log: $PROVISIONER_LOG)"
  mkdir -p "$(dirname "$PROVISIONER_PID")" "$(dirname "$PROVISIONER_LOG")"
  setsid "$PYTHON" "$SCRIPTS_DIR/kwok_provisioner.py" --kubeconfig "$KUBECONFIG_PATH" \
    --local-dir "$CLUSTER_DIR/volumes" >>"$PROVISIONER_LOG" 2>&1 </dev/null &
  echo $! >"$PROVISIONER_PID"
  sleep 1
  provisioner_running || { err "volume provisioner exited at once:"; tail -n 20 "$PROVISIONER_LOG" >&2; exit 1; }
}

stop_provisioner() {
  if provisioner_running; then
    kill "$(cat "$PROVISIONER_PID")" 2>/dev/null || true
  fi
  rm -f "$PROVISIONER_PID"
}

# The fake nodes (kwok's); real nodes carry the label saasodoo.dev/real-node.
FAKE_NODES=-l=!saasodoo.dev/real-node

scale_nodes() {
  local have
  have=$(kubectl get nodes "$FAKE_NODES" --no-headers 2>/dev/null | wc -l)
  if [[ $have -ne $NODES ]]; then
    info "scaling fake nodes: $have -> $NODES"
    kwokctl scale node --replicas "$NODES" -v WARN >&2
  fi
  info "waiting for $NODES nodes to be Ready"
  local deadline=$((SECONDS + 120))
  until [[ $(kubectl get nodes "$FAKE_NODES" --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l) -eq $NODES ]]; do
    if ((SECONDS > deadline)); then
      err "nodes not Ready after 120s:"; kubectl get nodes >&2 || true; exit 1
    fi
    sleep 1
  done
}

# Clusters created before metrics-server was part of the harness lack the metrics API;
# kwokctl cannot add a component to an existing cluster, so say how to recreate it.
check_metrics_api() {
  if ! kubectl get apiservice v1beta1.metrics.k8s.io >/dev/null 2>&1; then
    err "cluster '$CLUSTER' has no metrics API (created before metrics-server was added);"
    err "tenant usage needs it: run 'make cluster-down && make cluster' once"
    return 0
  fi
  local attempt
  for attempt in 1 2 3; do
    if metrics_api_available 90; then
      info "metrics API (metrics.k8s.io) available"
      return 0
    fi
    # An unavailable aggregated API blocks every namespace deletion (discovery fails), so
    # it must not be left so. metrics-server exits for good when it starts before the
    # apiserver answers (seen under load), and kwokctl restarts components only with the
    # whole cluster, after which kwok waits out its node leases (minutes).
    err "metrics API not available (attempt $attempt); metrics-server log:"
    tail -n 3 "$CLUSTER_DIR/logs/metrics-server.log" >&2 || true
    restart_metrics_server
  done
  err "metrics API still unavailable: namespace deletions would hang; see $CLUSTER_DIR/logs"
  exit 1
}

# Start metrics-server again exactly as kwokctl did: the command recorded for the component
# in the cluster's kwok.yaml, its pid and log where kwokctl keeps them.
restart_metrics_server() {
  local pidfile=$CLUSTER_DIR/pids/metrics-server.pid
  if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    sleep 1
  fi
  info "restarting metrics-server"
  # Python starts it: no descriptor of this script leaks into the daemon (close_fds).
  "$PYTHON" - "$CLUSTER_DIR" <<'PY'
import subprocess, sys, yaml
from pathlib import Path
root = Path(sys.argv[1])
for doc in yaml.safe_load_all((root / "kwok.yaml").read_text()):
    for c in (doc or {}).get("components", []):
        if c.get("name") == "metrics-server":
            with open(root / "logs" / "metrics-server.log", "ab") as log:
                proc = subprocess.Popen(
                    [c["binary"], *c.get("args", [])], cwd=root, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            (root / "pids" / "metrics-server.pid").write_text(f"{proc.pid}\n")
            sys.exit(0)
sys.exit("no metrics-server component in kwok.yaml")
PY
}

metrics_api_available() {
  local deadline=$((SECONDS + $1)) pidfile=$CLUSTER_DIR/pids/metrics-server.pid
  while true; do
    if [[ -f $pidfile ]] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      return 1 # exited: waiting will not help
    fi
    [[ $(kubectl get apiservice v1beta1.metrics.k8s.io \
      -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null) == True ]] &&
      return 0
    ((SECONDS < deadline)) || return 1
    sleep 2
  done
}

# A cluster named by SAASODOO_KUBECONFIG or KUBECONFIG is used as it is.
external_kubeconfig() { echo "${SAASODOO_KUBECONFIG:-${KUBECONFIG:-}}"; }

cmd_up() {
  local external
  external=$(external_kubeconfig)
  if [[ -n $external ]]; then
    info "using the cluster of $external (SAASODOO_KUBECONFIG/KUBECONFIG); the simulated cluster is not started"
    echo "$external"
    return 0
  fi
  require_tools
  if [[ -d $CLUSTER_DIR ]]; then
    if apiserver_ready; then
      info "cluster '$CLUSTER' is running"
    else
      info "cluster '$CLUSTER' exists but is stopped: starting it"
      if ! kwokctl start cluster --wait 3m -v WARN >&2; then
        err "kwokctl start cluster failed; logs in $CLUSTER_DIR/logs (make cluster-down && make cluster starts anew)"
        exit 1
      fi
    fi
  else
    create_cluster
  fi
  local deadline=$((SECONDS + 60))
  until apiserver_ready; do
    ((SECONDS < deadline)) || { err "kube-apiserver not ready after 60s; see $CLUSTER_DIR/logs"; exit 1; }
    sleep 1
  done
  apply_addons
  start_provisioner
  scale_nodes
  check_metrics_api
  if [[ $REAL_NODES != 0 ]]; then
    SAASODOO_CLUSTER_NAME=$CLUSTER SAASODOO_KWOK_WORKDIR=$KWOK_WORKDIR "$SCRIPTS_DIR/realnode.sh" up ||
      { err "real nodes failed to start (logs in $CLUSTER_DIR/realnode/logs); SAASODOO_REAL_NODES=0 runs without them"; exit 1; }
  fi
  info "cluster '$CLUSTER' ready; use it with: export KUBECONFIG=$KUBECONFIG_PATH"
  echo "$KUBECONFIG_PATH"
}

cmd_down() {
  SAASODOO_CLUSTER_NAME=$CLUSTER SAASODOO_KWOK_WORKDIR=$KWOK_WORKDIR "$SCRIPTS_DIR/operator.sh" stop
  SAASODOO_CLUSTER_NAME=$CLUSTER SAASODOO_KWOK_WORKDIR=$KWOK_WORKDIR "$SCRIPTS_DIR/realnode.sh" down
  stop_provisioner
  if [[ -d $CLUSTER_DIR ]]; then
    info "deleting cluster '$CLUSTER' and its state in $CLUSTER_DIR"
    # --kubeconfig names a file that does not exist: the user's ~/.kube/config is
    # never touched (create used --kubeconfig "" for the same reason).
    if ! kwokctl delete cluster --kubeconfig "$CLUSTER_DIR.no-user-kubeconfig" -v WARN >&2; then
      err "kwokctl delete cluster failed; its processes may still run (pids in $CLUSTER_DIR/pids)"
      exit 1
    fi
    rm -rf "$CLUSTER_DIR"
  else
    info "cluster '$CLUSTER' does not exist"
  fi
}

cmd_status() {
  local external
  external=$(external_kubeconfig)
  [[ -z $external ]] || KUBECONFIG_PATH=$external
  if ! apiserver_ready; then
    err "cluster '$CLUSTER' is not running (make cluster starts it)"
    exit 1
  fi
  echo "kubeconfig: $KUBECONFIG_PATH"
  kubectl version
  echo
  kubectl get nodes -o wide
  echo
  kubectl get storageclass,ingressclass
  echo
  kubectl get namespaces
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kubeconfig) echo "$KUBECONFIG_PATH" ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
