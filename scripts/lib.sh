# Shared shell helpers: sourced by the scripts in this folder, never run.
# Knows where each pinned tool lives; scripts/versions.env holds the versions.

SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPTS_DIR/.." && pwd)
# shellcheck source=scripts/versions.env
source "$SCRIPTS_DIR/versions.env"

TOOLS_DIR=${SAASODOO_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/saasodoo/tools}

info() { printf '\033[1m[saasodoo]\033[0m %s\n' "$*" >&2; }
err() { printf '\033[1;31m[saasodoo] ERROR:\033[0m %s\n' "$*" >&2; }

tool_version() {
  case $1 in
    kubernetes) echo "$KUBERNETES_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    helm3) echo "$HELM3_VERSION" ;;
    helm4) echo "$HELM4_VERSION" ;;
    netpolicy) echo "$NETPOL_ANALYZER_VERSION" ;;
    helm-docs) echo "$HELM_DOCS_VERSION" ;;
    metrics-server) echo "$METRICS_SERVER_VERSION" ;;
    kubernetes-node) echo "$KUBERNETES_VERSION" ;;
    kube-router) echo "$KUBE_ROUTER_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    traefik) echo "$TRAEFIK_VERSION" ;;
    *) return 1 ;;
  esac
}

tool_dir() { echo "$TOOLS_DIR/$1-$(tool_version "$1")"; }
tool_bin() { echo "$(tool_dir "$1")/bin/$2"; }
