#!/usr/bin/env bash
# Install the Debian packages that are missing from two lists:
#   - scripts/apt-packages.txt: what the project's tools and tests need;
#   - the vendor list of the Odoo server the `odoo` tests run ($SAASODOO_ODOO_APT_LIST, default
#     ../shared/vendor/odoo/apt-packages.txt relative to the project root): the Debian 12 packages
#     Odoo 18 runs on (its python3-* dependencies, fonts, postgresql-client). Kept where the
#     vendor keeps it, beside the Odoo tarball, so the two cannot drift apart.
# Needs root (CI runs as root); does nothing when everything is installed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

odoo_list=${SAASODOO_ODOO_APT_LIST:-../shared/vendor/odoo/apt-packages.txt}
[[ $odoo_list = /* ]] || odoo_list=$REPO_ROOT/$odoo_list
if [[ ! -f $odoo_list ]]; then
  err "Odoo's package list not found: $odoo_list (set SAASODOO_ODOO_APT_LIST)"
  exit 1
fi

mapfile -t wanted < <(sed 's/#.*//' "$SCRIPTS_DIR/apt-packages.txt" "$odoo_list" | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  info "apt: all ${#wanted[@]} packages present"
  exit 0
fi
info "apt: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
