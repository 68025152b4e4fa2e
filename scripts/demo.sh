#!/usr/bin/env bash
# The newcomer's main job. Idempotent: existing tenants are kept.
#
#   scripts/demo.sh            # uses SAASODOO_* from the environment (see Makefile)
#
# With a real node in the cluster (scripts/realnode.sh, the default of `make cluster`): the
# saasodoo platform runs IN the cluster (scripts/demo_platform.py): Supabase Auth, the
# operator and the API/web UI as pods on the real node, installed by scripts/deploy.sh; three
# OdooTenants applied with kubectl on the simulated nodes; the tenant `demo` created through
# the API by a signed-up user, running for real; the web UI's URL printed at the end.
#
# Without a real node: the tenants are OdooTenant objects applied by the operator as a local
# process (scripts/operator.sh, the only caller of helm; tenants made by an older saasodoo are
# adopted). On the fake nodes no Odoo process runs (kwok marks pods Ready); the tenants'
# objects, schedules, volumes and Helm releases are all real.
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

REAL_POOL=saasodoo.dev/real-node=true
KUBECTL=$(tool_bin kubernetes kubectl)
real_node=""
if [[ -n ${SAASODOO_KUBECONFIG:-} ]]; then
  real_node=$("$KUBECTL" --kubeconfig "$SAASODOO_KUBECONFIG" get nodes -l "$REAL_POOL" -o name 2>/dev/null | head -n 1)
fi
if [[ -n $real_node ]]; then
  # The platform's operator in the cluster is the only one: no local operator beside it.
  "$REPO_ROOT/scripts/operator.sh" stop
  KUBECONFIG=$SAASODOO_KUBECONFIG exec "$REPO_ROOT/.venv/bin/python" "$REPO_ROOT/scripts/demo_platform.py"
fi

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

echo
"$SAASODOO" tenant list
echo
if [[ -n ${SAASODOO_KUBECONFIG:-} ]]; then
  "$KUBECTL" --kubeconfig "$SAASODOO_KUBECONFIG" -n "${SAASODOO_SYSTEM_NAMESPACE:-saasodoo-system}" get odootenants
  echo
fi
"$SAASODOO" cluster distribution
