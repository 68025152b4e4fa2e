#!/usr/bin/env bash
# Build (or reuse) every pinned tool saasodoo needs, into a cache outside the repo.
#
#   scripts/install-tools.sh            # all tools
#   scripts/install-tools.sh helm3 kwok # only some
#   scripts/install-tools.sh --list     # tools, versions and cache paths
#   scripts/install-tools.sh --names    # the tools' names, on one line
#   scripts/install-tools.sh --env      # KEY=PATH of every binary, for tests and scripts
#
# Versions come from scripts/versions.env. Each tool lands in
# $SAASODOO_TOOLS_DIR/<tool>-<version>/bin (default ~/.cache/saasodoo/tools) and is
# reused when present, so a second run takes seconds. Everything is built from
# source through the Go module proxy, except promtool: Debian's prometheus package (the
# distribution's build). A binary already on PATH at exactly the pinned version is linked
# instead of built.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL_TOOLS=(kubernetes etcd kwok helm3 helm4 netpolicy helm-docs metrics-server gotrue promtool)
# The real node's tools (scripts/realnode.sh), built by the same means.
ALL_TOOLS+=(kubernetes-node kube-router coredns traefik versitygw)

# The two lanes of a full install (main): each tool in exactly one, longest first, those of
# NODE_LANE_TOOLS (scripts/lib.sh: what `make test`'s node lane needs, started as soon as they
# are in) before the others.
LANE_A=(kubernetes kubernetes-node kwok etcd helm3 versitygw helm-docs promtool)
LANE_B=(traefik kube-router helm4 metrics-server coredns gotrue netpolicy)

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
LOG_DIR="$TOOLS_DIR/logs"
mkdir -p "$LOG_DIR"

# run_logged TOOL CMD...: run a build step with output in the tool's log file;
# on failure name the tool, the step and show the end of the log. Build functions end each
# step with `|| return 1`: they run where `set -e` does not apply (`install_one ... || ...`).
run_logged() {
  local tool=$1; shift
  local logf="$LOG_DIR/$tool.log"
  echo "+ $*" >>"$logf"
  if ! "$@" >>"$logf" 2>&1; then
    err "$tool: step failed: $*"
    err "$tool: last lines of $logf:"
    tail -n 25 "$logf" | sed 's/^/    /' >&2
    return 1
  fi
}

# on_path_at_version NAME VERSION CMD...: print the path of NAME on PATH if
# running CMD with it prints VERSION.
on_path_at_version() {
  local name=$1 want=$2; shift 2
  local p
  p=$(command -v "$name" 2>/dev/null) || return 1
  case "$p" in "$TOOLS_DIR"/*) return 1 ;; esac
  local got
  got=$("$p" "$@" 2>/dev/null | head -n 5) || return 1
  [[ $got == *"$want"* ]] || return 1
  echo "$p"
}

# go_wrapper_module DIR: an empty throw-away module to build a program in.
go_wrapper_module() {
  rm -rf "$1"; mkdir -p "$1"
  (cd "$1" && go mod init saasodoo.local/toolbuild >/dev/null 2>&1)
}

# kubernetes_wrapper_module WORK: a wrapper module whose go.mod replaces every staging
# module of k8s.io/kubernetes@$KUBERNETES_VERSION by its published release.
kubernetes_wrapper_module() {
  local v=$KUBERNETES_VERSION work=$1 tool=$2
  local staging_v="v0.${v#v1.}"
  go_wrapper_module "$work"
  info "$tool: reading the upstream go.mod of k8s.io/kubernetes@$v"
  local gomod
  gomod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p') || return 1
  [[ -f $gomod ]] || { err "$tool: go mod download gave no go.mod for $v"; return 1; }
  # Every staging module is required at exactly v0.0.0 and replaced by a local
  # path upstream; outside that repo we point each at its published release.
  local staging
  staging=$(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u)
  [[ -n $staging ]] || { err "$tool: no staging modules found in $gomod"; return 1; }
  local godebug
  godebug=$(grep -E '^godebug ' "$gomod" || true)
  {
    echo "module saasodoo.local/toolbuild"
    echo
    grep -E '^go ' "$gomod"
    [[ -n $godebug ]] && echo "$godebug"
    echo
    for m in $staging; do echo "replace $m => $m $staging_v"; done
  } >"$work/go.mod"
  info "$tool: resolving $(wc -w <<<"$staging") staging modules at $staging_v"
}

# kubernetes_ldflags: the version stamps `kubectl version` and the components report.
kubernetes_ldflags() {
  local v=$KUBERNETES_VERSION
  local minor=${v#v1.}; minor=${minor%%.*}
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$v"
  ld+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$v"
  ld+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  echo "$ld"
}

# build_kubernetes_cmds TOOL OUT WORK CMD...: go get and build k8s.io/kubernetes/cmd/CMD...
build_kubernetes_cmds() {
  local tool=$1 out=$2 work=$3 v=$KUBERNETES_VERSION; shift 3
  kubernetes_wrapper_module "$work" "$tool" || return 1
  local args=() p
  for p in "$@"; do args+=("k8s.io/kubernetes/cmd/$p@$v"); done
  (cd "$work" && run_logged "$tool" go get "${args[@]}") || return 1
  local ld
  ld=$(kubernetes_ldflags)
  for p in "$@"; do
    info "$tool: go build $p (a first, cold build takes minutes on 2 cores)"
    (cd "$work" && run_logged "$tool" go build -trimpath -ldflags "$ld" -o "$out/$p" "k8s.io/kubernetes/cmd/$p") || return 1
  done
}

build_kubernetes() {
  build_kubernetes_cmds kubernetes "$1" "$2" kube-apiserver kube-controller-manager kube-scheduler kubectl
}

# --- the real node's tools (scripts/realnode.sh) ---

# kubelet and kube-proxy: a tool of their own, so the control plane's cache entry
# (kubernetes-<version>) stays valid; same version, same wrapper module.
build_kubernetes_node() {
  build_kubernetes_cmds kubernetes-node "$1" "$2" kubelet kube-proxy
}

# kube-router runs only its NetworkPolicy (firewall) controller on the real node.
# The module proxy serves no release after v2.1.0 (newer ones: 403, not available).
build_kube_router() {
  local v=$KUBE_ROUTER_VERSION out=$1 work=$2 mod=github.com/cloudnativelabs/kube-router/v2
  go_wrapper_module "$work"
  info "kube-router: go get $mod/cmd/kube-router@$v"
  (cd "$work" && run_logged kube-router go get "$mod/cmd/kube-router@$v") || return 1
  info "kube-router: go build kube-router"
  (cd "$work" && run_logged kube-router go build -trimpath \
    -ldflags "-s -w -X $mod/pkg/version.Version=$v" -o "$out/kube-router" "$mod/cmd/kube-router") || return 1
}

# CoreDNS: the cluster DNS of the real node (a pod behind Service kube-dns), built as
# CoreDNS documents for a custom plugin set: a main package that imports the plugins
# ($COREDNS_PLUGINS) and runs coremain, instead of upstream's main that imports all of them.
build_coredns() {
  local v=$COREDNS_VERSION out=$1 work=$2 mod=github.com/coredns/coredns p
  go_wrapper_module "$work"
  {
    echo "// CoreDNS $v with the plugins of scripts/versions.env (COREDNS_PLUGINS) only."
    echo "package main"
    echo
    echo "import ("
    for p in $COREDNS_PLUGINS; do echo "	_ \"$mod/plugin/$p\""; done
    echo
    echo "	\"$mod/coremain\""
    echo ")"
    echo
    echo "func main() { coremain.Run() }"
  } >"$work/main.go"
  local pkgs=("$mod/coremain@$v")
  for p in $COREDNS_PLUGINS; do pkgs+=("$mod/plugin/$p@$v"); done
  info "coredns: go get $mod@$v (plugins: $COREDNS_PLUGINS)"
  (cd "$work" && run_logged coredns go get "${pkgs[@]}") || return 1
  info "coredns: go build coredns"
  (cd "$work" && run_logged coredns go build -trimpath \
    -ldflags "-s -w -X $mod/coremain.GitCommit=$v" -o "$out/coredns" .) || return 1
}

# Traefik v3: the ingress controller of the real node (class traefik). Its go.mod replaces a
# few modules by forks; a wrapper module must repeat those replace lines (those naming a
# module and version; a local-path replace has nothing to point at outside its repository).
# Built without lego's ACME DNS-01 providers: package providers/dns imports ~150 DNS services'
# SDKs (a cold build: 12.6 CPU-minutes with them, 8.0 without). The real node uses Traefik
# as Ingress controller only (no ACME), so lego's module is replaced by a copy (from the module
# cache) whose providers/dns holds one generated file: NewDNSChallengeProviderByName, answering
# every name with an error. Traefik's ACME with HTTP-01/TLS-ALPN-01 is untouched.
build_traefik() {
  local v=$TRAEFIK_VERSION out=$1 work=$2 mod=github.com/traefik/traefik/v3
  go_wrapper_module "$work"
  local gomod
  gomod=$(cd "$work" && go mod download -json "$mod@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f $gomod ]] || { err "traefik: go mod download gave no go.mod for $v"; return 1; }
  sed -n '/^replace (/,/^)/p; /^replace [^(]/p' "$gomod" | sed 's/^replace //; /^(/d; /^)/d' |
    awk 'NF == 4 && $2 == "=>" {print "replace " $1 " => " $3 " " $4}' >>"$work/go.mod"
  traefik_without_dns_providers "$work" "$gomod" || return 1
  info "traefik: go get $mod/cmd/traefik@$v ($(grep -c '^replace' "$work/go.mod") replace lines)"
  (cd "$work" && run_logged traefik go get "$mod/cmd/traefik@$v") || return 1
  info "traefik: go build traefik"
  (cd "$work" && run_logged traefik go build -trimpath \
    -ldflags "-s -w -X $mod/pkg/version.Version=$v" -o "$out/traefik" "$mod/cmd/traefik") || return 1
}

# traefik_without_dns_providers WORK TRAEFIK_GOMOD: copy lego at the version Traefik requires
# into WORK/lego, its providers/dns package replaced by a stub, and point WORK's go.mod at it.
traefik_without_dns_providers() {
  local work=$1 gomod=$2 lego=github.com/go-acme/lego/v4 lv src
  lv=$(awk -v m="$lego" '$1 == m && $2 ~ /^v/ {print $2; exit}' "$gomod")
  [[ -n $lv ]] || { err "traefik: its go.mod requires no $lego"; return 1; }
  src=$(cd "$work" && go mod download -json "$lego@$lv" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -d $src/providers/dns ]] || { err "traefik: go mod download gave no $lego@$lv source"; return 1; }
  local sig='func NewDNSChallengeProviderByName(name string) (challenge.Provider, error)'
  if ! grep -qF "$sig" "$src"/providers/dns/*.go; then
    err "traefik: $lego@$lv/providers/dns has no '$sig': the stub below needs updating"
    return 1
  fi
  cp -r "$src" "$work/lego" && chmod -R u+w "$work/lego" || return 1
  rm -f "$work/lego/providers/dns/"*.go
  cat >"$work/lego/providers/dns/dns_providers.go" <<EOF_STUB
// Generated by saasodoo's scripts/install-tools.sh in place of lego $lv's DNS-01 providers
// (a Traefik for Ingress only; see build_traefik there).
package dns

import (
	"fmt"

	"$lego/challenge"
)

$sig {
	return nil, fmt.Errorf("unrecognized DNS provider: %s (this Traefik is built without ACME DNS providers)", name)
}
EOF_STUB
  echo "replace $lego => ./lego" >>"$work/go.mod"
  info "traefik: $lego $lv without its DNS providers (replaced by ./lego)"
}

# versitygw: the real node's S3-compatible server (scripts/s3.sh; the posix backend keeps
# objects as files). Its go.mod replaces nothing, so `go install` builds it as published; its
# RDMA and GPU parts sit behind build tags and cgo, left out here (CGO_ENABLED=0).
build_versitygw() {
  local v=$VERSITYGW_VERSION out=$1 mod=github.com/versity/versitygw
  info "versitygw: go install $mod/cmd/versitygw@$v"
  GOBIN=$out run_logged versitygw go install -trimpath \
    -ldflags "-s -w -X main.Version=$v -X main.Build=$v" "$mod/cmd/versitygw@$v" || return 1
}

build_etcd() {
  local v=$ETCD_VERSION out=$1 work=$2
  go_wrapper_module "$work"
  info "etcd: go get go.etcd.io/etcd/server/v3@$v"
  (cd "$work" && run_logged etcd go get "go.etcd.io/etcd/server/v3@$v") || return 1
  info "etcd: go build etcd"
  (cd "$work" && run_logged etcd go build -trimpath \
    -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3) || return 1
}

build_kwok() {
  local v=$KWOK_VERSION out=$1
  # consts.Version / consts.KubeVersion in the source already match this release.
  local ld="-s -w"
  for c in kwok kwokctl; do
    info "kwok: go install sigs.k8s.io/kwok/cmd/$c@$v"
    GOBIN=$out run_logged kwok go install -trimpath -ldflags "$ld" "sigs.k8s.io/kwok/cmd/$c@$v" || return 1
  done
}

build_helm() {
  local major=$1 v=$2 out=$3
  info "helm$major: go install helm.sh/helm/v$major/cmd/helm@$v"
  GOBIN=$out run_logged "helm$major" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v$major/internal/version.version=$v -X helm.sh/helm/v$major/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v$major/cmd/helm@$v" || return 1
}

build_netpolicy() {
  local v=$NETPOL_ANALYZER_VERSION out=$1 work=$2 mod=github.com/np-guard/netpol-analyzer
  # The Go checksum database has no entries for np-guard's modules (lookup: 404),
  # so Go cannot verify them itself. Their hashes are pinned in
  # scripts/netpolicy.sum instead and compared below before anything is built.
  # `go install pkg@v` also asks for the module's version list, which the proxy
  # refuses for this module; a wrapper module asks only for the exact version.
  export GONOSUMDB=github.com/np-guard
  go_wrapper_module "$work"
  info "netpolicy: go get $mod/cmd/netpolicy@$v"
  (cd "$work" && run_logged netpolicy go get "$mod/cmd/netpolicy@$v") || return 1
  if ! diff <(grep '^github.com/np-guard/' "$work/go.sum" | sort) <(grep -v '^#' "$SCRIPTS_DIR/netpolicy.sum" | sort) >>"$LOG_DIR/netpolicy.log"; then
    err "netpolicy: np-guard module hashes differ from scripts/netpolicy.sum (see $LOG_DIR/netpolicy.log)"
    return 1
  fi
  info "netpolicy: hashes match scripts/netpolicy.sum; go build $mod/cmd/netpolicy"
  (cd "$work" && run_logged netpolicy go build -trimpath -ldflags "-s -w" -o "$out/netpolicy" "$mod/cmd/netpolicy") || return 1
}

build_helm_docs() {
  local v=$HELM_DOCS_VERSION out=$1
  info "helm-docs: go install github.com/norwoodj/helm-docs/cmd/helm-docs@$v"
  GOBIN=$out run_logged helm-docs go install -trimpath -ldflags "-s -w -X main.version=${v#v}" \
    "github.com/norwoodj/helm-docs/cmd/helm-docs@$v" || return 1
}

# promtool alone (check rules, test rules), from Debian's prometheus package: `apt-get download`
# fetches the .deb (nothing is installed) and dpkg-deb unpacks only usr/bin/promtool.
promtool_deb_hint() {
  err "promtool: Debian's prometheus $PROMTOOL_DEB_VERSION cannot be downloaded; 'apt-cache policy prometheus' shows the versions apt knows (after 'apt-get update'): set PROMTOOL_DEB_VERSION in scripts/versions.env"
  return 1
}
build_promtool() {
  local v=$PROMTOOL_DEB_VERSION out=$1 work=$2 deb
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    { err "promtool: needs apt-get and dpkg-deb (Debian's prometheus $v package)"; return 1; }
  rm -rf "$work"; mkdir -p "$work/root"
  info "promtool: apt-get download prometheus=$v (only usr/bin/promtool is unpacked)"
  (cd "$work" && run_logged promtool apt-get download "prometheus=$v") || promtool_deb_hint || return 1
  deb=$(find "$work" -maxdepth 1 -name 'prometheus_*.deb' | head -n 1)
  [[ -n $deb ]] || { err "promtool: apt-get download left no prometheus .deb in $work"; return 1; }
  run_logged promtool bash -c 'set -o pipefail; dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" ./usr/bin/promtool' \
    _ "$deb" "$work/root" || return 1
  run_logged promtool install -m 0755 "$work/root/usr/bin/promtool" "$out/promtool" || return 1
  run_logged promtool "$out/promtool" --version || return 1
}

build_metrics_server() {
  local v=$METRICS_SERVER_VERSION out=$1 work=$2 mod=sigs.k8s.io/metrics-server
  # Served by kwokctl's metrics-server support (binary runtime); it scrapes the resource
  # metrics kwok simulates. Its kustomize manifests (APIService, Service, RBAC) come from
  # the same module and are kept next to the binary for kwokctl.
  go_wrapper_module "$work"
  info "metrics-server: go get $mod/cmd/metrics-server@$v"
  (cd "$work" && run_logged metrics-server go get "$mod/cmd/metrics-server@$v") || return 1
  info "metrics-server: go build metrics-server"
  (cd "$work" && run_logged metrics-server go build -trimpath \
    -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/component-base/version.gitVersion=$v" \
    -o "$out/metrics-server" "$mod/cmd/metrics-server") || return 1
  local src
  src=$(cd "$work" && go list -m -f '{{.Dir}}' "$mod") || return 1
  mkdir -p "$out/../manifests"
  cp -r "$src/manifests/base" "$out/../manifests/base" || return 1
  chmod -R u+w "$out/../manifests"
}

build_gotrue() {
  local out=$1 work=$2 src
  # The real Supabase Auth server, for the API and web tests and `make api AUTH=gotrue`.
  # Source: a `git archive` of github.com/supabase/auth (SAASODOO_GOTRUE_SRC); built the
  # way upstream's Makefile does (static, version string baked in).
  src=$(gotrue_src) || return 1
  rm -rf "$work"; mkdir -p "$work"
  info "gotrue: extracting $src"
  tar -xzf "$src" -C "$work"
  local gomod
  gomod=$(find "$work" -maxdepth 2 -name go.mod | head -n 1)
  if [[ -z $gomod ]] || ! grep -qx 'module github.com/supabase/auth' "$gomod"; then
    err "gotrue: $src holds no github.com/supabase/auth go.mod"
    return 1
  fi
  # git archive records the commit in the tar header; the version string shows it in /health.
  local commit
  commit=$(gzip -dc "$src" | git get-tar-commit-id 2>/dev/null || true)
  local mod
  mod=$(dirname "$gomod")
  info "gotrue: go mod download (commit ${commit:-unknown})"
  (cd "$mod" && run_logged gotrue go mod download) || return 1
  info "gotrue: go build (the first build takes about 10 min on 2 cores)"
  (cd "$mod" && run_logged gotrue go build -trimpath \
    -ldflags "-s -w -X github.com/supabase/auth/internal/utilities.Version=${commit:0:12}" \
    -o "$out/gotrue" .) || return 1
}

# install TOOL: reuse the cache entry, link a matching binary from PATH, or build.
install_one() {
  local tool=$1 dir bin v
  dir=$(tool_dir "$tool"); v=$(tool_version "$tool")
  if [[ -f $dir/.complete ]]; then
    info "$tool $v: cached in $dir"
    return 0
  fi
  local start=$SECONDS tmp="$dir.partial" work="$TOOLS_DIR/.work/$tool"
  rm -rf "$tmp"; mkdir -p "$tmp/bin"
  : >"$LOG_DIR/$tool.log"
  # A binary on PATH at the pinned version is used instead of a build.
  local found=""
  case $tool in
    helm3) found=$(on_path_at_version helm "$v" version --short || true) ;;
    helm4) found=$(on_path_at_version helm "$v" version --short || true) ;;
    etcd) found=$(on_path_at_version etcd "${v#v}" --version || true) ;;
  esac
  if [[ -n $found ]]; then
    info "$tool $v: using $found from PATH"
    ln -s "$found" "$tmp/bin/$(basename "$found")"
  else
    info "$tool $v: building into $dir (log: $LOG_DIR/$tool.log)"
    case $tool in
      kubernetes) build_kubernetes "$tmp/bin" "$work" ;;
      etcd) build_etcd "$tmp/bin" "$work" ;;
      kwok) build_kwok "$tmp/bin" ;;
      helm3) build_helm 3 "$v" "$tmp/bin" ;;
      helm4) build_helm 4 "$v" "$tmp/bin" ;;
      netpolicy) build_netpolicy "$tmp/bin" "$work" ;;
      helm-docs) build_helm_docs "$tmp/bin" ;;
      promtool) build_promtool "$tmp/bin" "$work" ;;
      metrics-server) build_metrics_server "$tmp/bin" "$work" ;;
      gotrue) build_gotrue "$tmp/bin" "$work" ;;
      kubernetes-node) build_kubernetes_node "$tmp/bin" "$work" ;;
      kube-router) build_kube_router "$tmp/bin" "$work" ;;
      coredns) build_coredns "$tmp/bin" "$work" ;;
      traefik) build_traefik "$tmp/bin" "$work" ;;
      versitygw) build_versitygw "$tmp/bin" ;;
      *) err "unknown tool '$tool' (known: ${ALL_TOOLS[*]})"; return 2 ;;
    esac || { err "$tool $v: build FAILED (see above)"; rm -rf "$tmp"; return 1; }
  fi
  touch "$tmp/.complete"
  rm -rf "$dir" "$work"; mv "$tmp" "$dir"
  info "$tool $v: ready in $((SECONDS - start))s"
}

main() {
  if [[ ${1:-} == --env ]]; then
    # KEY=PATH lines for the test-suite and other scripts (nothing is built).
    echo "SAASODOO_KUBE_APISERVER=$(tool_bin kubernetes kube-apiserver)"
    echo "SAASODOO_KUBECTL=$(tool_bin kubernetes kubectl)"
    echo "SAASODOO_ETCD=$(tool_bin etcd etcd)"
    echo "SAASODOO_KWOK=$(tool_bin kwok kwok)"
    echo "SAASODOO_KWOKCTL=$(tool_bin kwok kwokctl)"
    echo "SAASODOO_HELM3=$(tool_bin helm3 helm)"
    echo "SAASODOO_HELM4=$(tool_bin helm4 helm)"
    echo "SAASODOO_NETPOLICY=$(tool_bin netpolicy netpolicy)"
    echo "SAASODOO_HELM_DOCS=$(tool_bin helm-docs helm-docs)"
    echo "SAASODOO_PROMTOOL=$(tool_bin promtool promtool)"
    echo "SAASODOO_GOTRUE=$(tool_bin gotrue gotrue)"
    echo "SAASODOO_VERSITYGW=$(tool_bin versitygw versitygw)"
    return 0
  fi
  if [[ ${1:-} == --names ]]; then
    echo "${ALL_TOOLS[*]}"
    return 0
  fi
  if [[ ${1:-} == --list ]]; then
    for t in "${ALL_TOOLS[@]}"; do
      printf '%-11s %-9s %s\n' "$t" "$(tool_version "$t")" "$(tool_dir "$t")/bin"
    done
    return 0
  fi
  command -v go >/dev/null || { err "go is not on PATH: it builds every tool (install Go >= 1.26)"; exit 1; }
  local tools=("$@") failed=() start=$SECONDS
  info "tool cache: $TOOLS_DIR ($(go version))"
  # Each tool's result goes to <status dir>/<tool> (0 or 1) as soon as it is known;
  # SAASODOO_TOOLS_STATUS names that folder for scripts/test.sh, which starts a test lane once
  # its tools are in.
  local status_dir=${SAASODOO_TOOLS_STATUS:-}
  if [[ -z $status_dir ]]; then status_dir=$(mktemp -d); else mkdir -p "$status_dir"; fi
  build() {
    local t
    for t in "$@"; do
      if install_one "$t"; then echo 0; else echo 1; fi >"$status_dir/$t"
    done
  }
  if [[ ${#tools[@]} -gt 0 || ${SAASODOO_BUILD_JOBS:-2} == 1 ]]; then
    [[ ${#tools[@]} -gt 0 ]] || tools=("${ALL_TOOLS[@]}")
    build "${tools[@]}"
  else
    # All tools: two lanes side by side. A Go build keeps both cores busy only part of the
    # time (module downloads, the linker, the end of a dependency chain); a second build
    # fills the gaps. kubernetes-node follows kubernetes in one lane so that it compiles
    # none of their shared packages twice (it reuses them from the Go build cache).
    # SAASODOO_BUILD_JOBS=1: one after another.
    tools=("${ALL_TOOLS[@]}")
    build "${LANE_A[@]}" &
    local a=$!
    build "${LANE_B[@]}" &
    local b=$!
    wait "$a" "$b" || true
  fi
  for t in "${tools[@]}"; do
    [[ $(cat "$status_dir/$t" 2>/dev/null) == 0 ]] || failed+=("$t")
  done
  [[ -n ${SAASODOO_TOOLS_STATUS:-} ]] || rm -rf "$status_dir"
  if [[ ${#failed[@]} -gt 0 ]]; then
    err "failed to install: ${failed[*]}"
    exit 1
  fi
  info "all tools ready in $((SECONDS - start))s"
}

main "$@"
