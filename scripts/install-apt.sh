#!/usr/bin/env bash
# Install the Debian packages the project needs that are missing, from two lists:
#   - scripts/apt-packages.txt: what the project's tools and tests need;
#   - the vendor list of the Odoo server the `odoo` tests run ($SAASODOO_ODOO_APT_LIST, default
#     ../shared/vendor/odoo/apt-packages.txt relative to the project root): the Debian 12 packages
#     Odoo 18 runs on (its python3-* dependencies, fonts, postgresql-client). Kept where the
#     vendor keeps it, beside the Odoo tarball, so the two cannot drift apart.
#
#   scripts/install-apt.sh           # install what is missing (needs root or passwordless sudo)
#   scripts/install-apt.sh --check   # only report: exit 0 if all present, 3 if some are missing
#
# `make test`, `make demo` and `.ci/run` all call it (through `make system`), so a fresh machine
# gets the same packages whichever command a newcomer runs first. When everything is present it
# does nothing and takes well under a second. When packages are missing and this user cannot
# install them, it says which and how, in one line, and exits 3.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_only=false
[[ ${1:-} == --check ]] && check_only=true

odoo_list=${SAASODOO_ODOO_APT_LIST:-../shared/vendor/odoo/apt-packages.txt}
[[ $odoo_list = /* ]] || odoo_list=$REPO_ROOT/$odoo_list
if [[ ! -f $odoo_list ]]; then
  err "Odoo's package list not found: $odoo_list (set SAASODOO_ODOO_APT_LIST)"
  exit 1
fi

# Every list is read the same way: one package a line, comments after '#'.
lists=("$SCRIPTS_DIR/apt-packages.txt" "$odoo_list")
mapfile -t wanted < <(sed 's/#.*//' "${lists[@]}" | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  info "apt: all ${#wanted[@]} Debian packages present"
  exit 0
fi
if $check_only; then
  err "apt: missing Debian packages: ${missing[*]} (install them with: sudo scripts/install-apt.sh)"
  exit 3
fi

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  err "apt: missing Debian packages: ${missing[*]}; this user cannot install them: run 'sudo scripts/install-apt.sh' (or: sudo apt-get install ${missing[*]}) and try again"
  exit 3
fi
if ! command -v apt-get >/dev/null; then
  err "apt: missing Debian packages: ${missing[*]}; this is not a Debian/Ubuntu machine (no apt-get): install their equivalents by hand"
  exit 3
fi

info "apt: installing ${missing[*]}"
# Packages such as nginx and postgresql start a system service from their install script where
# they can (listening on every interface); the project starts its own servers on 127.0.0.1, so
# forbid service starts for the duration of the install (Debian's policy-rc.d, exit 101), unless
# the machine already has a policy of its own.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\n# saasodoo install-apt.sh: no service starts during the install\nexit 101\n' |
    "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
  trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
# Another apt/dpkg may hold the lock for a while (unattended upgrades, a second make): wait for it.
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
if ! "${apt[@]}" update -qq; then
  err "apt: 'apt-get update' failed (see above); needed packages: ${missing[*]}"
  exit 3
fi
if ! "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  err "apt: 'apt-get install' failed (see above) for: ${missing[*]}"
  exit 3
fi
info "apt: installed ${#missing[@]} package(s)"
