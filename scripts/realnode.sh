#!/usr/bin/env bash
# Real nodes for the simulated cluster: a real kubelet running real containers next to kwok's
# fake nodes, so tenants can run for real (PostgreSQL, Odoo, Traefik, NetworkPolicies).
#
#   scripts/realnode.sh up       # start SAASODOO_REAL_NODES real nodes (default 1) in the cluster
#   scripts/realnode.sh status   # nodes, processes, system pods
#   scripts/realnode.sh import IMAGE...  # build images/build.sh's IMAGEs, import them into the nodes
#   scripts/realnode.sh down     # stop them and undo every change to this machine
#
# Called by scripts/cluster.sh (up after the control plane, down before it); needs root and
# the tools of scripts/install-tools.sh (kubernetes-node, kube-router, coredns, traefik, versitygw) and
# scripts/install-apt.sh (containerd, runc, CNI plugins, iptables, ipset, mmdebstrap, ...).
#
# Per node i (realnode-i): a veth link with the private node IP 10.250.0.i/32 (nothing outside
# this machine reaches it); containerd (own root, state and socket); a CNI bridge rn<i>-br with
# the pod range 10.244.(49+i).0/24; a kubelet registered with label and taint
# saasodoo.dev/real-node=true (NoSchedule: only pods that tolerate it and select it land there),
# its cgroups under /saasodoo-rn<i>; kube-router running only its NetworkPolicy controller.
# Once for all nodes: kube-proxy (iptables mode); the apiserver's address for pods, 10.250.1.1,
# on a host of its own (below);
# CoreDNS as a pod behind Service kube-system/kube-dns (10.96.0.10): a pod, because
# NetworkPolicy peers never match host processes, and the chart allows DNS only to kube-dns
# pods; Traefik as a pod in namespace traefik (IngressClass traefik), its entrypoints published
# on this machine's 127.0.0.1: HTTP on $SAASODOO_INGRESS_HTTP_PORT (8080), HTTPS on
# $SAASODOO_INGRESS_HTTPS_PORT (8443, Traefik's default certificate for hosts without one).
#
# Pods and the Kubernetes API. The apiserver (kwokctl, scripts/cluster.sh) listens on 127.0.0.1
# only and advertises 10.250.1.1 (--advertise-address), so Service kubernetes (default,
# 10.96.0.1:443) has that address and the apiserver's port as its endpoint; its certificate
# carries 10.96.0.1, 10.250.1.1 and kubernetes.default.svc. 10.250.1.1 lives in a network
# namespace of its own (saasodoo-apiserver, a veth link to this machine), as a control-plane
# host would: pods reach it through kube-proxy and this machine's forwarding, so kube-router's
# egress NetworkPolicies apply to that traffic as to any other host's (traffic from a pod to its
# own node's addresses is never filtered by them, which is why the address is not a node's). A
# TCP relay listens there and hands each connection, through a Unix socket, to a relay on this
# machine that connects to 127.0.0.1: relays only, TLS ends at the apiserver, which
# authenticates every request itself (a pod's projected ServiceAccount token, which the kubelet
# gets through TokenRequest; without one the request is anonymous) and authorizes it with RBAC.
# Clients use their in-cluster config unchanged (KUBERNETES_SERVICE_HOST/PORT, the token and
# kube-root-ca.crt). Nothing outside this machine reaches the address. Binding the apiserver
# itself there instead would cut off the host's 127.0.0.1 kubeconfig, and the address exists
# only while a real node runs. CoreDNS (ServiceAccount kube-system/coredns) and
# Traefik (traefik/traefik) each get a ClusterRole with exactly what their code reads: CoreDNS
# lists and watches Services, EndpointSlices and Namespaces (no Pods: `pods insecure`); Traefik's
# Ingress provider lists and watches Ingresses, IngressClasses, Services, EndpointSlices,
# Secrets (TLS certificates, as every Ingress controller) and Nodes, and updates no Ingress
# status (no ingressEndpoint is set). Other system containers (Traefik's maintenance page, the
# S3 server) get no token.
#
# The images (images/build.sh) are imported into each node's containerd: pause, postgres:17.8-trixie,
# odoo:18.0 (stand-ins built from Debian packages and the Odoo sources), coredns, traefik, versitygw
# (the S3 server of the tenants' backups, run by scripts/s3.sh).
#
# What this changes on the machine, and `down` undoes: processes (by PID), links, iptables
# chains KUBE-*/CNI-* (v4 and v6) and ipsets made by kube-router, mounts and files under the
# state directories, the kubelet's hard-coded paths (/var/lib/kubelet, /var/log/containers,
# /var/lib/cni, /run/netns) when they did not exist before, cgroups /saasodoo-rn*, and the
# sysctls the kubelet and the CNI bridge change (restored to the values saved by `up`; the
# kubelet's are reset right after it starts).
#
# Environment: SAASODOO_CLUSTER_NAME, SAASODOO_KWOK_WORKDIR (as scripts/cluster.sh),
# SAASODOO_REAL_NODES (1), SAASODOO_INGRESS_HTTP_PORT (8080), SAASODOO_INGRESS_HTTPS_PORT (8443).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER=${SAASODOO_CLUSTER_NAME:-saasodoo}
KWOK_WORKDIR=${SAASODOO_KWOK_WORKDIR:-$(dirname "$TOOLS_DIR")/kwok}
CLUSTER_DIR=$KWOK_WORKDIR/clusters/$CLUSTER
KUBECONFIG_PATH=$CLUSTER_DIR/kubeconfig.yaml
REAL_NODES=${SAASODOO_REAL_NODES:-1}
HTTP_PORT=${SAASODOO_INGRESS_HTTP_PORT:-8080}
HTTPS_PORT=${SAASODOO_INGRESS_HTTPS_PORT:-8443}
KUBECTL=$(tool_bin kubernetes kubectl)
KUBELET=$(tool_bin kubernetes-node kubelet)
KUBE_PROXY=$(tool_bin kubernetes-node kube-proxy)
KUBE_ROUTER=$(tool_bin kube-router kube-router)

# Machine-wide: one cluster at a time has real nodes (iptables chains are global).
RUN_DIR=/run/saasodoo-realnode
STATE=$CLUSTER_DIR/realnode
SERVICE_CIDR=10.96.0.0/16
CLUSTER_CIDR=10.244.0.0/16
DNS_IP=10.96.0.10
# The apiserver's address for pods, on a host of its own (a network namespace, start_api_forwarder);
# scripts/cluster.sh passes it as --advertise-address.
API_ADDRESS=10.250.1.1
API_NETNS=saasodoo-apiserver
API_LINK=rnapi-host
API_LINK_PEER=rnapi-ns
MAINTENANCE_RETRY_AFTER=30 # seconds, the maintenance page's Retry-After (see apply_system_pods)
LABEL=saasodoo.dev/real-node
# Sysctls the kubelet (setupNode) and the CNI bridge plugin change; `down` restores them.
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward
  net.ipv4.conf.all.route_localnet)
# Paths the kubelet, containerd or libcni write regardless of their configuration.
HARDCODED_PATHS=(/var/lib/kubelet /var/log/containers /var/lib/cni /run/netns /var/run/netns
  /usr/libexec/kubernetes /opt/containerd /etc/cni)

kubectl() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
node_name() { echo "realnode-$1"; }
node_ip() { echo "10.250.0.$1"; }
pod_cidr() { echo "10.244.$((49 + $1)).0/24"; }
node_dir() { echo "$STATE/n$1"; }
node_run() { echo "$RUN_DIR/n$1"; }
ctr_sock() { echo "$(node_run "$1")/containerd.sock"; }
ctr() { local i=$1; shift; command ctr --address "$(ctr_sock "$i")" --namespace k8s.io "$@"; }

# --- processes -------------------------------------------------------------------------------

# start NAME LOG CMD...: run CMD as a daemon of its own session; its PID in $RUN_DIR/NAME.pid.
start() {
  local name=$1 logf=$2; shift 2
  mkdir -p "$(dirname "$logf")"
  setsid "$@" >>"$logf" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

running() { [[ -f $RUN_DIR/$1.pid ]] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

# stop NAME: TERM the recorded PID, KILL it after 15 s.
stop() {
  local name=$1 pidf=$RUN_DIR/$1.pid pid
  [[ -f $pidf ]] || return 0
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    local n=0
    while kill -0 "$pid" 2>/dev/null && ((n < 150)); do sleep 0.1; n=$((n + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
      err "$name (pid $pid) did not stop on TERM: KILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidf"
}

wait_for() { # SECONDS WHAT CMD...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then err "$what: not ready after ${1}s"; return 1; fi
    sleep 0.5
  done
}

# --- up --------------------------------------------------------------------------------------

preflight() {
  [[ $(id -u) == 0 ]] || { err "real nodes need root (containerd, kubelet, iptables)"; exit 1; }
  [[ $REAL_NODES =~ ^[0-9]+$ && $REAL_NODES -le 9 ]] ||
    { err "SAASODOO_REAL_NODES must be a number from 0 to 9 (got '$REAL_NODES')"; exit 2; }
  local missing=() b
  for b in "$KUBECTL" "$KUBELET" "$KUBE_PROXY" "$KUBE_ROUTER" "$(tool_bin coredns coredns)" \
    "$(tool_bin traefik traefik)" "$(tool_bin versitygw versitygw)"; do
    [[ -x $b ]] || missing+=("$b")
  done
  [[ ${#missing[@]} -eq 0 ]] ||
    { err "missing tools: ${missing[*]}; build them: scripts/install-tools.sh"; exit 1; }
  for b in containerd runc ctr iptables ip6tables ipset mmdebstrap umoci skopeo socat; do
    command -v "$b" >/dev/null || missing+=("$b")
  done
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  [[ ${#missing[@]} -eq 0 ]] ||
    { err "missing Debian packages/commands: ${missing[*]}; install them: scripts/install-apt.sh"; exit 1; }
  [[ -f $KUBECONFIG_PATH ]] && kubectl get --raw /readyz >/dev/null 2>&1 ||
    { err "cluster '$CLUSTER' is not running: start it with scripts/cluster.sh up"; exit 1; }
  # kwok must leave the real nodes alone: cluster.sh creates clusters with that patch.
  grep -q 'manage-nodes-with-annotation-selector' "$CLUSTER_DIR/kwok.yaml" || {
    err "cluster '$CLUSTER' was created before real nodes existed (kwok would manage them):"
    err "recreate it: scripts/cluster.sh down && scripts/cluster.sh up"
    exit 1
  }
  # Pods reach the API as their ServiceAccount: cluster.sh creates clusters whose apiserver
  # advertises API_ADDRESS, with a certificate valid for Service kubernetes.
  grep -q "advertise-address=$API_ADDRESS" "$CLUSTER_DIR/kwok.yaml" &&
    openssl x509 -in "$CLUSTER_DIR/pki/admin.crt" -noout -ext subjectAltName 2>/dev/null |
    grep -q 'IP Address:10.96.0.1' || {
    err "cluster '$CLUSTER' was created before pods reached the API through Service kubernetes:"
    err "recreate it: scripts/cluster.sh down && scripts/cluster.sh up"
    exit 1
  }
  if [[ -f $RUN_DIR/cluster && $(cat "$RUN_DIR/cluster") != "$CLUSTER_DIR" ]]; then
    err "real nodes of another cluster are running ($(cat "$RUN_DIR/cluster")): one cluster at a time;"
    err "stop them first (SAASODOO_CLUSTER_NAME=<that cluster> scripts/realnode.sh down)"
    exit 1
  fi
}

save_baseline() {
  [[ -f $RUN_DIR/baseline.sysctl ]] && return 0
  local s p
  for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$RUN_DIR/baseline.sysctl"
  for p in "${HARDCODED_PATHS[@]}"; do [[ -e $p ]] && echo "$p"; done >"$RUN_DIR/baseline.paths" || true
  if command -v nft >/dev/null; then nft list tables >"$RUN_DIR/baseline.nft"; fi
}

restore_kubelet_sysctls() {
  local line
  while IFS= read -r line; do
    case $line in
      kernel.panic=* | kernel.panic_on_oops=* | vm.overcommit_memory=*) sysctl -qw "$line" ;;
    esac
  done <"$RUN_DIR/baseline.sysctl"
}

build_images() {
  info "images: building or reusing pause, postgres:17.8-trixie, odoo:18.0, coredns, traefik, busybox, versitygw"
  "$REPO_ROOT/images/build.sh" pause postgres odoo coredns traefik busybox versitygw >"$RUN_DIR/images.list"
}

setup_link() {
  local i=$1 host="rn$1-node" peer="rn$1-peer"
  if ! ip link show "$host" >/dev/null 2>&1; then
    ip link add "$host" type veth peer name "$peer"
  fi
  ip addr replace "$(node_ip "$i")/32" dev "$host"
  ip link set "$host" up
  ip link set "$peer" up
}

write_containerd_config() {
  local i=$1 d run
  d=$(node_dir "$i"); run=$(node_run "$i")
  mkdir -p "$d/cni/net.d" "$d/containerd" "$run"
  cat >"$d/containerd.toml" <<EOF
version = 2
root = "$d/containerd"
state = "$run/containerd"
[grpc]
  address = "$(ctr_sock "$i")"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/saasodoo/pause:1"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  # No CAP_SYS_RESOURCE on these machines: nothing may lower its oom_score_adj (pause wants -998).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni/net.d"
    max_conf_num = 1
EOF
  cat >"$d/cni/net.d/10-saasodoo.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "saasodoo-rn$i",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "rn$i-br",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$d/cni/ipam",
        "ranges": [[{"subnet": "$(pod_cidr "$i")"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

start_containerd() {
  local i=$1
  running "containerd-$i" && return 0
  write_containerd_config "$i"
  start "containerd-$i" "$(node_dir "$i")/logs/containerd.log" containerd --config "$(node_dir "$i")/containerd.toml"
  wait_for 30 "containerd of node $i" ctr "$i" version
}

import_images() { # NODE [LIST]: the images of LIST (NAME=ARCHIVE lines; default images.list)
  local i=$1 list=${2:-$RUN_DIR/images.list} name archive
  while IFS='=' read -r name archive; do
    local marker
    marker=$(node_dir "$i")/imported-$(basename "$archive")
    if [[ -f $marker ]]; then continue; fi
    info "node $i: importing image $name ($(du -h "$archive" | cut -f1))"
    ctr "$i" images import "$archive" >/dev/null
    touch "$marker"
  done <"$list"
}

kubelet_config() {
  local i=$1 d
  d=$(node_dir "$i")
  cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $(node_ip "$i")
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: $((10247 + i))
readOnlyPort: 0
cgroupDriver: cgroupfs
cgroupRoot: /saasodoo-rn$i
failCgroupV1: false
containerRuntimeEndpoint: unix://$(ctr_sock "$i")
failSwapOn: false
podLogsDir: $d/pod-logs
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: /etc/resolv.conf
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CLUSTER_DIR/pki/ca.crt}
authorization:
  mode: Webhook
registerWithTaints:
- {key: $LABEL, value: "true", effect: NoSchedule}
# A test machine: no evictions for small disk margins, no image garbage collection.
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
cgroupsPerQOS: true
enforceNodeAllocatable: ["pods"]
serializeImagePulls: false
maxPods: 60
protectKernelDefaults: false
volumePluginDir: $d/kubelet/volume-plugins
makeIPTablesUtilChains: true
EOF
}

cgroup_dirs() { # I: the node's cgroup root in every v1 hierarchy (and the unified one)
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ -d $h ]] && echo "${h%/}/saasodoo-rn$1"
  done
}

start_kubelet() {
  local i=$1 d c
  running "kubelet-$i" && return 0
  d=$(node_dir "$i")
  kubelet_config "$i"
  for c in $(cgroup_dirs "$i"); do mkdir -p "$c" 2>/dev/null || true; done
  mkdir -p "$d/kubelet" "$d/pki" "$d/pod-logs"
  info "node $i: starting kubelet as $(node_name "$i") ($(node_ip "$i"), pods $(pod_cidr "$i"))"
  start "kubelet-$i" "$d/logs/kubelet.log" "$KUBELET" --config "$d/kubelet.yaml" \
    --kubeconfig "$KUBECONFIG_PATH" --root-dir "$d/kubelet" --cert-dir "$d/pki" \
    --hostname-override "$(node_name "$i")" --node-ip "$(node_ip "$i")" \
    --node-labels "$LABEL=true" --v=1
  # The kubelet sets kernel.panic, kernel.panic_on_oops and vm.overcommit_memory once at start
  # (setupNode, before it registers): put them back as soon as the node exists.
  wait_for 90 "node $(node_name "$i") registered" kubectl get node "$(node_name "$i")"
  sleep 1
  restore_kubelet_sysctls
}

start_kube_router() {
  local i=$1
  running "kube-router-$i" && return 0
  # Only the NetworkPolicy controller; health and metrics servers off (no listener at all).
  start "kube-router-$i" "$(node_dir "$i")/logs/kube-router.log" "$KUBE_ROUTER" \
    --kubeconfig "$KUBECONFIG_PATH" --hostname-override "$(node_name "$i")" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
    --enable-cni=false --enable-ipv6=false --service-cluster-ip-range "$SERVICE_CIDR" \
    --health-port=0 --metrics-port=0
}

start_kube_proxy() {
  running kube-proxy && return 0
  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $KUBECONFIG_PATH}
hostnameOverride: $(node_name 1)
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["10.250.0.0/24"]
# Leave the conntrack sysctls as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start kube-proxy "$STATE/logs/kube-proxy.log" "$KUBE_PROXY" --config "$STATE/kube-proxy.yaml"
}

# The apiserver's port (127.0.0.1 only, chosen by kwokctl): the kubeconfig's server.
api_port() { kubectl config view -o jsonpath='{.clusters[0].cluster.server}' | sed 's/.*://'; }

# Service kubernetes's endpoint (API_ADDRESS and the apiserver's port, see the header): the
# apiserver's own host, a network namespace of its own joined to this machine by a veth link,
# where a plain TCP relay listens and hands each connection through a Unix socket to a second
# relay on this machine, which connects to the apiserver on 127.0.0.1. TLS and authentication
# stay the apiserver's own.
setup_api_host() {
  [[ -e /run/netns/$API_NETNS ]] || ip netns add "$API_NETNS"
  if ! ip link show "$API_LINK" >/dev/null 2>&1; then
    ip link add "$API_LINK" type veth peer name "$API_LINK_PEER" netns "$API_NETNS"
  fi
  ip link set "$API_LINK" up
  ip route replace "$API_ADDRESS/32" dev "$API_LINK"
  ip -n "$API_NETNS" link set lo up
  ip -n "$API_NETNS" addr replace "$API_ADDRESS/32" dev "$API_LINK_PEER"
  ip -n "$API_NETNS" link set "$API_LINK_PEER" up
  # Back to the pods and the nodes through this machine (the first node's address answers ARP).
  ip -n "$API_NETNS" route replace default via "$(node_ip 1)" dev "$API_LINK_PEER" onlink
}

start_api_forwarder() {
  running api-forwarder && running api-relay && return 0
  stop_api_relays # one left alive (the other died) would hold the address or the socket
  local port sock=$RUN_DIR/apiserver.sock
  port=$(api_port)
  [[ $port =~ ^[0-9]+$ ]] || { err "no apiserver port in $KUBECONFIG_PATH"; return 1; }
  setup_api_host
  start api-relay "$STATE/logs/api-forwarder.log" socat \
    "UNIX-LISTEN:$sock,mode=600,unlink-early,fork" "TCP:127.0.0.1:$port"
  start api-forwarder "$STATE/logs/api-forwarder.log" ip netns exec "$API_NETNS" socat \
    "TCP-LISTEN:$port,bind=$API_ADDRESS,reuseaddr,fork" "UNIX-CONNECT:$sock"
  wait_for 20 "the API forwarder on $API_ADDRESS:$port" \
    curl -sf --cacert "$CLUSTER_DIR/pki/ca.crt" "https://$API_ADDRESS:$port/readyz"
}

# The relays and the ones they forked for open connections (their process groups).
stop_api_relays() {
  local name pidf
  for name in api-forwarder api-relay; do
    pidf=$RUN_DIR/$name.pid
    [[ -f $pidf ]] && kill -- -"$(cat "$pidf")" 2>/dev/null || true
    stop "$name"
  done
}

# The relays, then the apiserver's namespace and link.
stop_api_forwarder() {
  stop_api_relays
  ip netns del "$API_NETNS" 2>/dev/null || true
  ip link del "$API_LINK" 2>/dev/null || true
}

image_ref_of() { # NAME: the reference images/build.sh tags NAME with
  case $1 in
    coredns) echo "localhost/saasodoo/coredns:$COREDNS_VERSION" ;;
    traefik) echo "localhost/saasodoo/traefik:$TRAEFIK_VERSION" ;;
    busybox) echo "docker.io/library/busybox:1.37" ;;
  esac
}

apply_system_pods() {
  info "CoreDNS (kube-system/kube-dns $DNS_IP) and Traefik (traefik, 127.0.0.1:$HTTP_PORT/$HTTPS_PORT) on the real node"
  kubectl apply --server-side --force-conflicts --field-manager=saasodoo-realnode -f - >/dev/null <<EOF
# CoreDNS's kubernetes plugin ($COREDNS_VERSION, plugin/kubernetes/controller.go): informers on
# Services, EndpointSlices and Namespaces; Pods only with "pods verified", Nodes only for
# federation: neither here.
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: saasodoo:coredns}
rules:
- {apiGroups: [""], resources: [services, namespaces], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: saasodoo:coredns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: saasodoo:coredns}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        cache 30
        loop
        reload
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      nodeSelector: {$LABEL: "true"}
      tolerations: [{key: $LABEL, operator: Exists, effect: NoSchedule}]
      dnsPolicy: Default
      serviceAccountName: coredns
      enableServiceLinks: false
      containers:
      - name: coredns
        image: $(image_ref_of coredns)
        imagePullPolicy: Never
        args: ["-conf", "/etc/coredns/Corefile"]
        ports:
        - {containerPort: 53, name: dns, protocol: UDP}
        - {containerPort: 53, name: dns-tcp, protocol: TCP}
        readinessProbe: {httpGet: {path: /ready, port: 8181}, periodSeconds: 2}
        livenessProbe: {httpGet: {path: /health, port: 8080}, periodSeconds: 10}
        securityContext:
          runAsUser: 65534
          runAsGroup: 65534
          runAsNonRoot: true
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
          seccompProfile: {type: RuntimeDefault}
        volumeMounts: [{name: config, mountPath: /etc/coredns}]
      volumes: [{name: config, configMap: {name: coredns}}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
---
# The maintenance page (#22, point 15c): while a tenant's Odoo has no Ready pod (a restore, an
# update, a suspension) its Ingress keeps its router (allowEmptyServices) and Traefik's 503 "no
# available server", or a 502 from a pod going away, becomes this page with 503 and Retry-After.
# The errors middleware sits on both entrypoints and keeps the page's headers; the page comes
# from busybox httpd beside Traefik (127.0.0.1:8081), a CGI so it can send Retry-After.
apiVersion: v1
kind: ConfigMap
metadata: {name: traefik-maintenance, namespace: traefik}
data:
  dynamic.yaml: |
    http:
      middlewares:
        maintenance:
          errors:
            status: ["502-503"]
            statusRewrites: {"502": 503}
            service: maintenance
            query: /cgi-bin/maintenance
      services:
        maintenance:
          loadBalancer:
            servers: [{url: "http://127.0.0.1:8081"}]
  maintenance: |
    #!/bin/sh
    printf 'Status: 503 Service Unavailable\r\nRetry-After: $MAINTENANCE_RETRY_AFTER\r\n'
    printf 'Cache-Control: no-store\r\nContent-Type: text/html; charset=utf-8\r\n\r\n'
    cat <<'PAGE'
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><title>Maintenance</title>
    <meta http-equiv="refresh" content="$MAINTENANCE_RETRY_AFTER"></head>
    <body style="font-family: sans-serif; margin: 4em auto; max-width: 36em">
    <h1>Down for maintenance</h1>
    <p>This Odoo is being restored, updated or restarted. It will be back in a moment;
    this page reloads by itself.</p></body></html>
    PAGE
---
# Traefik's Ingress provider ($TRAEFIK_VERSION, pkg/provider/kubernetes/ingress/client.go):
# informers on Ingresses, Services, EndpointSlices and Secrets in every namespace, IngressClasses
# and Nodes cluster-wide; its listers answer every get. It writes an Ingress's status only with
# an ingressEndpoint, which is not set: no ingresses/status.
apiVersion: v1
kind: ServiceAccount
metadata: {name: traefik, namespace: traefik}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: saasodoo:traefik}
rules:
- {apiGroups: [""], resources: [services, secrets, nodes], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
- {apiGroups: [networking.k8s.io], resources: [ingresses, ingressclasses], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: saasodoo:traefik}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: saasodoo:traefik}
subjects: [{kind: ServiceAccount, name: traefik, namespace: traefik}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: traefik, namespace: traefik, labels: {app.kubernetes.io/name: traefik}}
spec:
  replicas: 1
  strategy: {type: Recreate}  # host ports: the old pod must go first
  selector: {matchLabels: {app.kubernetes.io/name: traefik}}
  template:
    metadata: {labels: {app.kubernetes.io/name: traefik}}
    spec:
      nodeSelector: {$LABEL: "true", kubernetes.io/hostname: $(node_name 1)}
      tolerations: [{key: $LABEL, operator: Exists, effect: NoSchedule}]
      serviceAccountName: traefik
      # Traefik's container alone gets the token (the volume kube-api-access below, what
      # automounting would put in every container, the maintenance page's too).
      automountServiceAccountToken: false
      enableServiceLinks: false
      containers:
      - name: traefik
        image: $(image_ref_of traefik)
        imagePullPolicy: Never
        args:
        - --entrypoints.web.address=:8000
        - --entrypoints.websecure.address=:8443
        # Every router is served over TLS here too (Traefik's default certificate when the
        # Ingress names no Secret), as on a platform's HTTPS entrypoint.
        - --entrypoints.websecure.http.tls=true
        - --entrypoints.traefik.address=:9000
        - --ping=true
        - --ping.entrypoint=traefik
        - --providers.kubernetesingress=true
        - --providers.kubernetesingress.ingressclass=traefik
        - --providers.kubernetesingress.allowemptyservices=true
        - --providers.file.filename=/etc/traefik/dynamic/dynamic.yaml
        - --entrypoints.web.http.middlewares=maintenance@file
        - --entrypoints.websecure.http.middlewares=maintenance@file
        - --global.checknewversion=false
        - --global.sendanonymoususage=false
        - --log.level=INFO
        - --accesslog=true
        ports:
        - {name: web, containerPort: 8000, hostPort: $HTTP_PORT, hostIP: 127.0.0.1}
        - {name: websecure, containerPort: 8443, hostPort: $HTTPS_PORT, hostIP: 127.0.0.1}
        readinessProbe: {httpGet: {path: /ping, port: 9000}, periodSeconds: 2}
        securityContext: &restricted
          runAsUser: 65532
          runAsGroup: 65532
          runAsNonRoot: true
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
          seccompProfile: {type: RuntimeDefault}
        volumeMounts:
        - {name: dynamic, mountPath: /etc/traefik/dynamic, readOnly: true}
        - {name: kube-api-access, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}
      - name: maintenance
        image: $(image_ref_of busybox)
        imagePullPolicy: Never
        command: [httpd, -f, -p, "127.0.0.1:8081", -h, /www]
        securityContext: *restricted
        volumeMounts: [{name: maintenance, mountPath: /www/cgi-bin, readOnly: true}]
      volumes:
      - name: kube-api-access
        projected:
          defaultMode: 0444
          sources:
          - serviceAccountToken: {path: token, expirationSeconds: 3607}
          - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
          - downwardAPI:
              items: [{path: namespace, fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}]
      - name: dynamic
        configMap: {name: traefik-maintenance, items: [{key: dynamic.yaml, path: dynamic.yaml}]}
      - name: maintenance
        configMap:
          name: traefik-maintenance
          items: [{key: maintenance, path: maintenance}]
          defaultMode: 0755
EOF
}

wait_system_pods() {
  kubectl -n kube-system rollout status deploy/coredns --timeout=180s >&2
  kubectl -n traefik rollout status deploy/traefik --timeout=180s >&2
}

cmd_up() {
  [[ $REAL_NODES == 0 ]] && { info "SAASODOO_REAL_NODES=0: no real node"; return 0; }
  preflight
  mkdir -p "$RUN_DIR" "$STATE/logs"
  echo "$CLUSTER_DIR" >"$RUN_DIR/cluster"
  save_baseline
  build_images
  local i
  for ((i = 1; i <= REAL_NODES; i++)); do
    mkdir -p "$(node_dir "$i")/logs" "$(node_run "$i")"
    setup_link "$i"
    start_containerd "$i"
    import_images "$i"
    start_kubelet "$i"
  done
  start_kube_proxy
  for ((i = 1; i <= REAL_NODES; i++)); do start_kube_router "$i"; done
  for ((i = 1; i <= REAL_NODES; i++)); do
    kubectl wait --for=condition=Ready "node/$(node_name "$i")" --timeout=120s >/dev/null
  done
  start_api_forwarder
  apply_system_pods
  wait_system_pods
  "$SCRIPTS_DIR/s3.sh" up  # the S3 server of the tenants' backups (namespace s3)
  info "real nodes ready: $(kubectl get nodes -l "$LABEL=true" -o name | tr '\n' ' ')"
}

# --- down ------------------------------------------------------------------------------------

# kill_cgroup_procs I: what is left in the node's cgroups (containers whose shim died).
kill_cgroup_procs() {
  local c pid
  for c in $(cgroup_dirs "$1"); do
    [[ -d $c ]] || continue
    while read -r pid; do
      [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
    done < <(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
}

remove_cgroups() {
  local c
  for c in $(cgroup_dirs "$1"); do
    [[ -d $c ]] || continue
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

stop_containers() {
  local i=$1 id
  [[ -S $(ctr_sock "$i") ]] && running "containerd-$i" || return 0
  for id in $(ctr "$i" tasks ls -q 2>/dev/null); do
    ctr "$i" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  sleep 1
  for id in $(ctr "$i" tasks ls -q 2>/dev/null); do
    ctr "$i" tasks delete -f "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr "$i" containers ls -q 2>/dev/null); do
    ctr "$i" containers delete "$id" >/dev/null 2>&1 || true
  done
}

# unmount_under DIR: every mount below DIR, deepest first.
unmount_under() {
  local dir=$1 m
  [[ -n $dir ]] || return 0
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || err "could not unmount $m"
  done < <(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r)
}

# delete_chains IPT: our jump rules, then every KUBE-*/CNI-* chain, in every table.
delete_chains() {
  local ipt=$1 table rule chain
  for table in filter nat mangle raw; do
    "$ipt" -t "$table" -S >/dev/null 2>&1 || continue
    while read -r rule; do
      # shellcheck disable=SC2086 # the saved rule is a word list
      eval "$ipt -t $table ${rule/#-A/-D}" 2>/dev/null || true
    done < <("$ipt" -t "$table" -S | grep -E '^-A ' | grep -E -- '-j (KUBE-|CNI-)' |
      grep -vE '^-A (KUBE-|CNI-)')
    while read -r chain; do
      "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
    done < <("$ipt" -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ {print $2}')
    while read -r chain; do
      "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
    done < <("$ipt" -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ {print $2}')
  done
}

cleanup_firewall() {
  delete_chains iptables
  delete_chains ip6tables
  # kube-router's ipsets (KUBE-SRC-*, KUBE-DST-*, kube-router-*), now unreferenced.
  local s
  while read -r s; do
    ipset destroy "$s" 2>/dev/null || true
  done < <(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router-)' || true)
  # Tables iptables-nft created that are now empty (nft from package nftables, if present).
  if command -v nft >/dev/null && [[ -f $RUN_DIR/baseline.nft ]]; then
    local fam name
    while read -r _ fam name; do
      grep -qxF "table $fam $name" "$RUN_DIR/baseline.nft" && continue
      if ! nft list table "$fam" "$name" 2>/dev/null | grep -qE '^\s+(ip|tcp|udp|meta|ct|counter|jump|goto|accept|drop|reject|mark|fib|iifname|oifname)'; then
        nft delete table "$fam" "$name" 2>/dev/null || true
      fi
    done < <(nft list tables 2>/dev/null)
  fi
}

restore_sysctls() {
  [[ -f $RUN_DIR/baseline.sysctl ]] || return 0
  local line
  while IFS= read -r line; do sysctl -qw "$line" || err "could not restore sysctl $line"; done \
    <"$RUN_DIR/baseline.sysctl"
}

remove_hardcoded_paths() {
  local p
  for p in "${HARDCODED_PATHS[@]}"; do
    [[ -e $p ]] || continue
    grep -qxF "$p" "$RUN_DIR/baseline.paths" 2>/dev/null && continue
    unmount_under "$p"
    rm -rf "$p"
  done
}

# delete_bridge_ports BRIDGE: the veth links of the pods the CNI bridge plugin attached to BRIDGE
# (their host ends; a veth's peer goes with it). Containers killed without a CNI DEL can leave
# a pod's network namespace alive a while (the kernel frees it once its last reference goes),
# and with it its veth pair, outside any bridge once the bridge is deleted.
delete_bridge_ports() {
  local port
  for port in $(ip -o link show master "$1" 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}'); do
    ip link del "$port" 2>/dev/null || true
  done
}

cmd_down() {
  if [[ ! -d $RUN_DIR ]]; then
    info "no real node is running"
    return 0
  fi
  if [[ -f $RUN_DIR/cluster && $(cat "$RUN_DIR/cluster") != "$CLUSTER_DIR" ]]; then
    local owner
    owner=$(cat "$RUN_DIR/cluster")
    if [[ -d $owner ]]; then
      info "the real nodes belong to $owner, not to cluster '$CLUSTER': left alone"
      return 0
    fi
    info "the real nodes of $owner outlived their cluster: stopping them"
    CLUSTER_DIR=$owner
    STATE=$CLUSTER_DIR/realnode
    KUBECONFIG_PATH=$CLUSTER_DIR/kubeconfig.yaml
  fi
  info "stopping the real nodes and undoing their changes"
  local i n=0 f
  for f in "$RUN_DIR"/kubelet-*.pid; do [[ -e $f ]] && n=$((n + 1)); done
  n=$((n > REAL_NODES ? n : REAL_NODES))
  stop_api_forwarder
  stop api-proxy # a node started before the forwarder replaced the kubectl proxy
  stop kube-proxy
  for ((i = 1; i <= n; i++)); do
    stop "kube-router-$i"
    stop "kubelet-$i"
    stop_containers "$i"
    stop "containerd-$i"
    kill_cgroup_procs "$i"
  done
  # Shims still running for our containerd sockets (normally none after the tasks are deleted).
  local pid
  for pid in $(pgrep -x containerd-shim || true); do  # comm: the first 15 characters
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-address $RUN_DIR/"; then
      kill "$pid" 2>/dev/null || true
    fi
  done
  sleep 0.5
  for ((i = 1; i <= n; i++)); do
    remove_cgroups "$i"
    ip link del "rn$i-node" 2>/dev/null || true
    delete_bridge_ports "rn$i-br"
    ip link del "rn$i-br" 2>/dev/null || true
  done
  cleanup_firewall
  unmount_under "$STATE"
  unmount_under "$RUN_DIR"
  remove_hardcoded_paths
  restore_sysctls
  # The cluster's objects for the real nodes (when it still runs); kwokctl delete removes the rest.
  if [[ -f $KUBECONFIG_PATH ]] && kubectl get --raw /readyz >/dev/null 2>&1; then
    for ((i = 1; i <= n; i++)); do kubectl delete node "$(node_name "$i")" --ignore-not-found --wait=false >/dev/null 2>&1 || true; done
  fi
  rm -rf "$STATE" "$RUN_DIR"
  info "real nodes stopped; machine state restored"
}

cmd_status() {
  if [[ ! -d $RUN_DIR ]]; then
    echo "no real node is running"
    return 0
  fi
  echo "cluster: $(cat "$RUN_DIR/cluster" 2>/dev/null)"
  local f name
  for f in "$RUN_DIR"/*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    if running "$name"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: NOT running"; fi
  done
  if [[ -f $KUBECONFIG_PATH ]]; then
    kubectl get nodes -l "$LABEL=true" -o wide || true
    kubectl get pods -A -o wide --field-selector "spec.nodeName=$(node_name 1)" || true
  fi
}

# import NAME...: build (or reuse) images/build.sh's images NAME... and import them into the
# containerd of every running node (images a node has imported already are skipped).
cmd_import() {
  (($# > 0)) || { err "usage: scripts/realnode.sh import IMAGE... (names of images/build.sh)"; exit 2; }
  [[ -d $RUN_DIR ]] || { err "no real node is running (scripts/cluster.sh up starts one)"; exit 1; }
  local list=$RUN_DIR/import.list i found=0
  "$REPO_ROOT/images/build.sh" "$@" >"$list"
  for ((i = 1; i <= 9; i++)); do
    running "containerd-$i" || continue
    import_images "$i" "$list"
    found=1
  done
  ((found)) || { err "no node's containerd is running"; exit 1; }
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  import) shift; cmd_import "$@" ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
