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
    promtool) echo "deb-$PROMTOOL_DEB_VERSION" ;;
    metrics-server) echo "$METRICS_SERVER_VERSION" ;;
    gotrue) gotrue_version ;;
    kubernetes-node) echo "$KUBERNETES_VERSION" ;;
    kube-router) echo "$KUBE_ROUTER_VERSION" ;;
    coredns) echo "$COREDNS_VERSION-p$(printf %s "$COREDNS_PLUGINS" | sha256sum | cut -c1-8)" ;;
    traefik) echo "$TRAEFIK_VERSION-nodns" ;;
    versitygw) echo "$VERSITYGW_VERSION" ;;
    *) return 1 ;;
  esac
}

# The tools `make test`'s node lane needs to start (scripts/test.sh starts it once these and the
# images are built, while the others still build): the simulated cluster's, helm 3 (the Odoo
# tests) and 4, and the real node's. Not GoTrue: only the platform's real-node test uses it (its
# image), and that test runs last (tests/conftest.py), ~40 minutes in; GoTrue builds next in
# its build lane (~1.5 min), and a failed build stops the node lane.
NODE_LANE_TOOLS=(kubernetes etcd kwok metrics-server helm3 helm4 kubernetes-node kube-router coredns
  traefik versitygw)

tool_dir() { echo "$TOOLS_DIR/$1-$(tool_version "$1")"; }
tool_bin() { echo "$(tool_dir "$1")/bin/$2"; }

# GoTrue (Supabase Auth) is built from a source tarball (the module proxy refuses the
# module itself). SAASODOO_GOTRUE_SRC names it (a glob that must match one file),
# relative to the project root; its cache entry is keyed by the tarball's hash.
gotrue_src() {
  local pattern=${SAASODOO_GOTRUE_SRC:-../shared/vendor/gotrue/gotrue-src-*.tar.gz}
  [[ $pattern == /* ]] || pattern="$REPO_ROOT/$pattern"
  local matches=()
  # shellcheck disable=SC2206  # the glob is meant to expand here
  matches=($pattern)
  if [[ ${#matches[@]} -ne 1 || ! -f ${matches[0]} ]]; then
    err "gotrue: SAASODOO_GOTRUE_SRC ($pattern) must name exactly one source tarball, found: ${matches[*]}"
    return 1
  fi
  echo "${matches[0]}"
}
gotrue_version() {
  local src
  src=$(gotrue_src) || return 1
  echo "src-$(sha256sum "$src" | cut -c1-12)"
}
