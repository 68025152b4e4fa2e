#!/usr/bin/env bash
# The newcomer's main job: a simulated cluster with a few demo tenants, their
# status and their spread over the nodes. Idempotent: existing tenants are kept.
#
#   scripts/demo.sh            # uses SAASODOO_* from the environment (see Makefile)
#
# The tenants are OdooTenant objects applied by the operator (scripts/operator.sh starts it
# beside the simulated cluster, the only caller of helm; tenants made by an older saasodoo
# are adopted). On the fake nodes no Odoo process runs (kwok marks pods Ready); the tenants'
# objects, schedules, volumes and Helm releases are all real. When the cluster has a
# real node (scripts/realnode.sh), one more tenant, `demo`, runs there for real
# (its spec.nodePool): its working URL is printed at the end.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SAASODOO=${SAASODOO:-$REPO_ROOT/.venv/bin/saasodoo}
# Addresses are shown as SAASODOO_PUBLIC_URL says; the simulated cluster's Traefik listens on
# 127.0.0.1:$SAASODOO_INGRESS_HTTPS_PORT (8443), so that port is in every address shown here.
if [[ -z ${SAASODOO_PUBLIC_URL:-} && ${SAASODOO_KUBECONFIG:-} == "$("$REPO_ROOT/scripts/cluster.sh" kubeconfig)" ]]; then
  export SAASODOO_PUBLIC_URL="https://{host}:${SAASODOO_INGRESS_HTTPS_PORT:-8443}"
fi
DEMO_TENANTS=${DEMO_TENANTS:-"acme:starter globex:standard initech:premium"}

"$REPO_ROOT/scripts/operator.sh" start
export SAASODOO_OPERATOR=1

for entry in $DEMO_TENANTS; do
  id=${entry%%:*} plan=${entry#*:}
  if "$SAASODOO" tenant status "$id" >/dev/null 2>&1; then
    info "tenant $id exists"
    continue
  fi
  info "creating demo tenant $id (plan $plan)"
  "$SAASODOO" tenant create "$id" --email "admin@$id.example" --plan "$plan" >/dev/null
done

REAL_POOL=saasodoo.dev/real-node=true
KUBECTL=$(tool_bin kubernetes kubectl)
real_node=""
if [[ -n ${SAASODOO_KUBECONFIG:-} ]]; then
  real_node=$("$KUBECTL" --kubeconfig "$SAASODOO_KUBECONFIG" get nodes -l "$REAL_POOL" -o name 2>/dev/null | head -n 1)
fi
if [[ -n $real_node ]]; then
  if SAASODOO_NODE_POOL=$REAL_POOL "$SAASODOO" tenant status demo >/dev/null 2>&1; then
    info "tenant demo exists"
  else
    info "creating tenant demo on the real node (${real_node#node/}): PostgreSQL and Odoo run for real (~1-2 min)"
    SAASODOO_NODE_POOL=$REAL_POOL "$SAASODOO" tenant create demo --email admin@demo.example --plan starter >/dev/null
  fi
fi

echo
"$SAASODOO" tenant list
echo
if [[ -n ${SAASODOO_KUBECONFIG:-} ]]; then
  "$KUBECTL" --kubeconfig "$SAASODOO_KUBECONFIG" -n "${SAASODOO_SYSTEM_NAMESPACE:-saasodoo-system}" get odootenants
  echo
fi
"$SAASODOO" cluster distribution

if [[ -n $real_node ]]; then
  # The address saasodoo shows (SAASODOO_PUBLIC_URL: scheme, host and the ingress's port).
  base=$("$SAASODOO" tenant status demo -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
  url="$base/web/login"
  hostport=${base#*://}
  host=${hostport%%:*}
  port=${hostport##*:}
  [[ $port == "$hostport" ]] && port=443
  # The URL must answer: Traefik on 127.0.0.1 -> the tenant's Odoo on the real node.
  code=$(curl -sk -o /dev/null -w '%{http_code}' --resolve "$host:$port:127.0.0.1" "$url" || true)
  if [[ $code != 200 ]]; then
    err "demo tenant: $url answered '$code' (expected 200)"
    exit 1
  fi
  echo
  info "tenant demo runs for real on ${real_node#node/}: $url (Traefik's self-signed certificate;"
  info "the admin password: kubectl -n tenant-demo get secret saasodoo-admin -o jsonpath='{.data.admin-password}' | base64 -d)"
  echo "$url"
fi
