#!/usr/bin/env bash
# The newcomer's main job: a simulated cluster with a few demo tenants, their
# status and their spread over the nodes. Idempotent: existing tenants are kept.
#
#   scripts/demo.sh            # uses SAASODOO_* from the environment (see Makefile)
#
# On the simulated cluster no Odoo process runs (kwok marks pods Ready); the
# tenants' objects, schedules, volumes and Helm releases are all real.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SAASODOO=${SAASODOO:-$REPO_ROOT/.venv/bin/saasodoo}
DEMO_TENANTS=${DEMO_TENANTS:-"acme:starter globex:standard initech:premium"}

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
"$SAASODOO" cluster distribution
