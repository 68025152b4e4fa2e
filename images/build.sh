#!/usr/bin/env bash
# Build (or reuse) the real node's container images from Debian packages and source trees.
#
#   images/build.sh pause postgres odoo   # build what is missing; print NAME=ARCHIVE lines
#   images/build.sh --archives            # NAME=ARCHIVE of every image (nothing is built)
#   images/build.sh --refs                # NAME=REFERENCE of every image (nothing is built)
#
# Each image is a Debian root filesystem made by mmdebstrap (minbase, no recommends) plus one
# small layer of this folder's files (entrypoints, configs), packed by umoci and converted by
# skopeo into a docker-archive that `ctr images import` takes. Both steps are cached under
# $SAASODOO_TOOLS_DIR/images, keyed by a hash of their build inputs: the root filesystem by its
# definition below (suite, packages, hooks), the image by that plus the files of images/<name>/.
# Editing an entrypoint therefore repacks in seconds; changing a package list rebuilds the rootfs.
#
# The images carry the names the chart uses by default (docker.io/library/postgres:17.8-trixie,
# docker.io/library/odoo:18.0; tests/unit/test_images.py keeps them equal to the chart's defaults), so a tenant runs on the real node unchanged. They are
# stand-ins built from the same sources as the official images; images/README.md says what
# differs.
#
# Environment: SAASODOO_ODOO_TARBALL (the Odoo 18.0 source tarball, default
# ../shared/vendor/odoo/odoo-18.0-504b0670-min.tar.xz from the project root, the same setting
# the `odoo` tests use), SAASODOO_ODOO_APT_LIST (its Debian package list, default the vendor's
# apt-packages.txt, as for scripts/install-apt.sh),
# SAASODOO_DEBIAN_MIRROR / SAASODOO_DEBIAN_SECURITY_MIRROR (default: the host's apt sources).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

IMAGES_SRC=$REPO_ROOT/images
IMAGE_CACHE=$TOOLS_DIR/images
ODOO_SOURCE=${SAASODOO_ODOO_TARBALL:-../shared/vendor/odoo/odoo-18.0-504b0670-min.tar.xz}
[[ $ODOO_SOURCE = /* ]] || ODOO_SOURCE=$REPO_ROOT/$ODOO_SOURCE
ODOO_APT_PACKAGES=${SAASODOO_ODOO_APT_LIST:-../shared/vendor/odoo/apt-packages.txt}
[[ $ODOO_APT_PACKAGES = /* ]] || ODOO_APT_PACKAGES=$REPO_ROOT/$ODOO_APT_PACKAGES
ALL_IMAGES=(pause postgres odoo coredns traefik busybox saasodoo gotrue versitygw)
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# image_ref NAME: the reference the image is tagged with (what the chart's defaults resolve to).
image_ref() {
  case $1 in
    pause) echo "localhost/saasodoo/pause:1" ;;
    postgres) echo "docker.io/library/postgres:17.8-trixie" ;;
    odoo) echo "docker.io/library/odoo:18.0" ;;
    busybox) echo "docker.io/library/busybox:1.37" ;;
    coredns) echo "localhost/saasodoo/coredns:$COREDNS_VERSION" ;;
    traefik) echo "localhost/saasodoo/traefik:$TRAEFIK_VERSION" ;;
    gotrue) echo "localhost/saasodoo/gotrue:$(gotrue_version)" ;;
    versitygw) echo "localhost/saasodoo/versitygw:$VERSITYGW_VERSION" ;;
    saasodoo) echo "localhost/saasodoo/saasodoo:$(saasodoo_version)" ;;
    *) return 1 ;;
  esac
}

# host_mirror SUFFIX: the first Debian URI of the host's apt sources ending in SUFFIX.
host_mirror() {
  local uri
  uri=$(grep -h -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -oE 'https?://[^ ]+' | grep -E "/debian$1/?\$" | head -n 1 || true)
  [[ -n $uri ]] || { err "no Debian mirror ending in /debian$1 in /etc/apt/sources*; set SAASODOO_DEBIAN_MIRROR"; return 1; }
  echo "${uri%/}"
}

# sources SUITE [POCKET...]: the apt source lines of SUITE (main, its updates, its security
# updates) and of SUITE-POCKET for each extra POCKET (e.g. backports).
sources() {
  local suite=$1 mirror security p
  shift
  mirror=${SAASODOO_DEBIAN_MIRROR:-$(host_mirror "")}
  security=${SAASODOO_DEBIAN_SECURITY_MIRROR:-$(host_mirror "-security")}
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$mirror" "$suite" "$mirror" "$suite" "$security" "$suite"
  for p in "$@"; do printf 'deb %s %s-%s main\n' "$mirror" "$suite" "$p"; done
}

# system_user NAME UID GID HOME SHELL: an essential-hook adding a system user and group with
# fixed ids before any package creates them (passwd is not in minbase yet at that point).
system_user() {
  printf '%s' "echo '$1:x:$3:' >>\"\$1\"/etc/group; echo '$1:!::' >>\"\$1\"/etc/gshadow; "
  printf '%s' "echo '$1:x:$2:$3::$4:$5' >>\"\$1\"/etc/passwd; echo '$1:!:1::::::' >>\"\$1\"/etc/shadow"
}

# Common mmdebstrap options: minbase, no recommends, no docs/man pages, no apt lists left.
MMDEBSTRAP_COMMON=(
  --variant=minbase --mode=root --format=tar --aptopt='APT::Install-Recommends "false"'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log "$1"/var/log/apt/*'
)

# --- root filesystems: rootfs_NAME OUT.tar (their bodies are part of the cache key) ---

rootfs_pause() {
  local out=$1 dir
  dir=$(mktemp -d)
  gcc -static -Os -s -o "$dir/pause" "$IMAGES_SRC/pause/pause.c"
  tar -C "$dir" --owner=0 --group=0 -cf "$out" pause
  rm -rf "$dir"
}

# CoreDNS, Traefik and versitygw: their static binary from the tool cache
# (scripts/install-tools.sh) alone.
rootfs_static() { # OUT BINARY
  local dir
  dir=$(mktemp -d)
  cp "$2" "$dir/$(basename "$2")"
  mkdir -p "$dir/tmp" && chmod 1777 "$dir/tmp"
  tar -C "$dir" --owner=0 --group=0 -cf "$1" .
  rm -rf "$dir"
}
rootfs_coredns() { rootfs_static "$1" "$(tool_bin coredns coredns)"; }
rootfs_traefik() { rootfs_static "$1" "$(tool_bin traefik traefik)"; }
# Supabase Auth (GoTrue, from the vendored source; its migrations are embedded in the binary).
rootfs_gotrue() { rootfs_static "$1" "$(tool_bin gotrue gotrue)"; }
rootfs_versitygw() { rootfs_static "$1" "$(tool_bin versitygw versitygw)"; }

# busybox (the probe image of scripts/test-network-isolation.py): Debian's static busybox 1.37
# alone, its applets linked into /bin.
rootfs_busybox() {
  local out=$1 tmp status=0
  tmp=$(mktemp -d)
  # Variant extract unpacks the package and runs no hook: the links are made here.
  sources trixie | mmdebstrap --variant=extract --mode=root --format=directory \
    --include=busybox-static trixie "$tmp/root" - || status=$?
  if [[ $status == 0 ]]; then
    ln -s usr/bin "$tmp/root/bin"
    chroot "$tmp/root" /usr/bin/busybox --install -s /usr/bin
    mkdir -p "$tmp/root/tmp" && chmod 1777 "$tmp/root/tmp"
    rm -rf "$tmp/root/var" "$tmp/root/usr/share"
    tar -C "$tmp/root" --owner=0 --group=0 -cf "$out" . || status=$?
  fi
  rm -rf "$tmp"
  return "$status"
}

# PostgreSQL 17 from Debian trixie. The postgres user and group get uid/gid 999 before the
# package creates them (as in the official image); the package's default cluster is removed.
# Left out: the LLVM JIT (llvmjit.so, its bitcode and libLLVM, ~150 MB); PostgreSQL then runs
# without JIT, as when jit = off. Hooks touch the rootfs only through chroot: trixie's
# /var/run is an absolute symlink to /run, which outside the chroot is the host's.
POSTGRES_SUITE=trixie
POSTGRES_MAJOR=17
rootfs_postgres() {
  local out=$1 v=$POSTGRES_MAJOR
  sources "$POSTGRES_SUITE" | mmdebstrap "${MMDEBSTRAP_COMMON[@]}" \
    --include="postgresql-$v,util-linux,ca-certificates,tzdata,xz-utils,zstd" \
    --dpkgopt="path-exclude=/usr/lib/postgresql/$v/lib/llvmjit*" \
    --dpkgopt="path-exclude=/usr/lib/postgresql/$v/lib/bitcode/*" \
    --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libLLVM*' \
    --essential-hook="$(system_user postgres 999 999 /var/lib/postgresql /bin/bash)" \
    --customize-hook="chroot \"\$1\" sed -ri \"s/^#?(listen_addresses)\\s*=\\s*\\S+.*/\\1 = '*'/\" /usr/share/postgresql/$v/postgresql.conf.sample" \
    --customize-hook="rm -rf \"\$1\"/var/lib/postgresql/$v \"\$1\"/etc/postgresql/$v/main" \
    --customize-hook='chroot "$1" sh -ec "mkdir -p /docker-entrypoint-initdb.d /var/lib/postgresql/data /run/postgresql; chown -R postgres:postgres /var/lib/postgresql /run/postgresql; chmod 3777 /run/postgresql; chmod 1777 /var/lib/postgresql/data"' \
    "$POSTGRES_SUITE" "$out" -
}

# Odoo 18.0 from its source tree, on the Debian packages the tree's list names (bookworm, Python
# 3.11). Odoo lives where Debian's odoo package puts it (/usr/lib/python3/dist-packages/odoo,
# the addons merged in, /usr/bin/odoo), as in the official image; user odoo is uid 100, gid 101.
# Not trixie: this Odoo 18.0 tree fails there (Python 3.13: safe_eval refuses the new TO_BOOL
# opcode; Werkzeug 3.1 has no __version__). Its PostgreSQL 17 client is a layer of its own
# (rootfs_pgclient): bookworm's 15 cannot dump the postgres:17 server.
# wkhtmltopdf (Debian's 0.12.6, Qt WebKit without wkhtmltopdf's patched Qt, as in the official
# image's Ubuntu package) prints Odoo's PDF reports; Odoo finds it in PATH. It runs headless,
# with no X server (tried: Debian's build prints without DISPLAY).
ODOO_SUITE=bookworm
ODOO_EXTRA_PACKAGES=python3,curl,ca-certificates,wkhtmltopdf
odoo_packages() {
  sed 's/#.*//' "$ODOO_APT_PACKAGES" | tr -s ' \t' '\n' | grep -v '^$' | paste -sd, -
}
rootfs_odoo() {
  local out=$1 pkgs src tree status=0
  [[ -f $ODOO_SOURCE ]] || { err "odoo: source tarball not found: $ODOO_SOURCE (SAASODOO_ODOO_TARBALL)"; return 1; }
  [[ -f $ODOO_APT_PACKAGES ]] || { err "odoo: package list not found: $ODOO_APT_PACKAGES"; return 1; }
  pkgs=$(odoo_packages)
  src=$(mktemp -d)
  tar -C "$src" -xJf "$ODOO_SOURCE"
  tree=$(echo "$src"/odoo-*)
  sources "$ODOO_SUITE" |
    mmdebstrap "${MMDEBSTRAP_COMMON[@]}" \
      --include="$ODOO_EXTRA_PACKAGES,$pkgs" \
      --essential-hook="$(system_user odoo 100 101 /var/lib/odoo /usr/sbin/nologin)" \
      --customize-hook="cp -a '$tree/odoo' \"\$1\"/usr/lib/python3/dist-packages/odoo" \
      --customize-hook="cp -a '$tree/addons/.' \"\$1\"/usr/lib/python3/dist-packages/odoo/addons/" \
      --customize-hook="install -m 0755 '$tree/odoo-bin' \"\$1\"/usr/bin/odoo" \
      --customize-hook='chroot "$1" python3 -m compileall -q /usr/lib/python3/dist-packages/odoo >/dev/null' \
      --customize-hook='mkdir -p "$1"/etc/odoo "$1"/var/lib/odoo "$1"/mnt/extra-addons' \
      --customize-hook='chroot "$1" chown odoo:odoo /var/lib/odoo /mnt/extra-addons' \
      "$ODOO_SUITE" "$out" - || status=$?
  rm -rf "$src"
  return "$status"
}

# The PostgreSQL 17 client for the odoo image (bookworm has 15; pg_dump refuses a newer server):
# trixie's pg_dump, pg_restore, psql and pg_dumpall with the shared libraries they load and
# trixie's dynamic loader, under /opt/postgresql-17, started through wrappers in /usr/local/bin
# (which comes before /usr/bin in PATH). A layer of its own, added on top of the odoo rootfs.
rootfs_pgclient() {
  local out=$1 tmp v=$POSTGRES_MAJOR status=0
  tmp=$(mktemp -d)
  sources "$POSTGRES_SUITE" | mmdebstrap --variant=minbase --mode=root --format=directory \
    --aptopt='APT::Install-Recommends "false"' --include="postgresql-client-$v" \
    "$POSTGRES_SUITE" "$tmp/root" - || status=$?
  if [[ $status == 0 ]]; then
    local opt=$tmp/layer/opt/postgresql-$v p lib
    mkdir -p "$opt/bin" "$opt/lib" "$tmp/layer/usr/local/bin"
    for p in pg_dump pg_restore psql pg_dumpall; do
      cp "$tmp/root/usr/lib/postgresql/$v/bin/$p" "$opt/bin/"
      for lib in $(chroot "$tmp/root" ldd "/usr/lib/postgresql/$v/bin/$p" | grep -oE '/[^ ]+\.so[^ ]*'); do
        cp -L "$tmp/root$lib" "$opt/lib/"
      done
      printf '#!/bin/sh\n# PostgreSQL %s client (Debian %s) on its own libraries: see images/README.md.\nexec /opt/postgresql-%s/lib/ld-linux-x86-64.so.2 --library-path /opt/postgresql-%s/lib /opt/postgresql-%s/bin/%s "$@"\n' \
        "$v" "$POSTGRES_SUITE" "$v" "$v" "$v" "$p" >"$tmp/layer/usr/local/bin/$p"
      chmod 0755 "$tmp/layer/usr/local/bin/$p"
    done
    tar -C "$tmp/layer" --owner=0 --group=0 -cf "$out" opt usr || status=$?
  fi
  rm -rf "$tmp"
  return "$status"
}

# The platform's image (charts/saasodoo): saasodoo, its CLI, the odoo-tenant chart, the plans
# and the pinned helm, on Debian bookworm's Python 3.11, user saasodoo 10001, nothing written
# at run time outside /tmp (the chart mounts a read-only root filesystem). Two layers: the
# dependencies (keyed by pyproject.toml: rebuilt when they change) and the application (keyed
# by its sources: repacked in seconds on every change). The wheels are downloaded on this host
# by its pip (and its index settings) for CPython 3.11 on x86-64 Linux, whatever the host's
# Python, and installed offline in the image.
SAASODOO_SUITE=bookworm
SAASODOO_PYTHON=python3.11
SAASODOO_PREFIX=/opt/saasodoo
saasodoo_version() {
  sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO_ROOT/pyproject.toml" | head -n 1
}
host_python() { echo "${PYTHON:-$REPO_ROOT/.venv/bin/python}"; }
rootfs_saasodoo() {
  local out=$1 wheels status=0 py
  py=$(host_python)
  wheels=$(mktemp -d)
  "$py" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
    "$REPO_ROOT/pyproject.toml" >"$wheels/requirements.txt"
  # CPython 3.11 on x86-64 Linux (the image's), whatever this host's Python: wheels only
  "$py" -m pip download --quiet --dest "$wheels" --only-binary=:all: \
    --python-version 3.11 --implementation cp --platform manylinux2014_x86_64 \
    --platform manylinux_2_28_x86_64 --platform linux_x86_64 --platform any \
    -r "$wheels/requirements.txt" || status=$?
  if [[ $status == 0 ]]; then
    sources "$SAASODOO_SUITE" | mmdebstrap "${MMDEBSTRAP_COMMON[@]}" \
      --include=python3,python3-venv,ca-certificates,tzdata \
      --essential-hook="$(system_user saasodoo 10001 10001 /tmp /usr/sbin/nologin)" \
      --customize-hook="mkdir -p \"\$1\"/tmp/wheels && cp '$wheels'/*.whl \"\$1\"/tmp/wheels/" \
      --customize-hook="chroot \"\$1\" python3 -m venv $SAASODOO_PREFIX/venv" \
      --customize-hook="chroot \"\$1\" sh -ec '$SAASODOO_PREFIX/venv/bin/pip install --quiet --no-index --no-cache-dir /tmp/wheels/*.whl'" \
      --customize-hook="chroot \"\$1\" $SAASODOO_PREFIX/venv/bin/python -m compileall -q $SAASODOO_PREFIX/venv >/dev/null" \
      --customize-hook='rm -rf "$1"/tmp/wheels' \
      "$SAASODOO_SUITE" "$out" - || status=$?
  fi
  rm -rf "$wheels"
  return "$status"
}
# The application layer: the saasodoo wheel unpacked into the venv (a wheel is a zip; pip
# would do the same), its console script, the tenant chart, the plans and helm.
rootfs_saasodooapp() {
  local out=$1 tmp py site status=0
  py=$(host_python)
  tmp=$(mktemp -d)
  site=$tmp/root$SAASODOO_PREFIX/venv/lib/$SAASODOO_PYTHON/site-packages
  mkdir -p "$site" "$tmp/root$SAASODOO_PREFIX/venv/bin" "$tmp/root$SAASODOO_PREFIX/charts" "$tmp/root/usr/local/bin"
  # From a copy of the files git knows (tracked and new, not ignored): a build in the work
  # tree would reuse its stale build/ and *.egg-info (a module deleted since, or a data file
  # list of another day).
  mkdir -p "$tmp/src"
  (cd "$REPO_ROOT" && git ls-files -z --cached --others --exclude-standard |
    tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -C "$tmp/src" -xf - || status=$?
  [[ $status == 0 ]] && { "$py" -m pip wheel --quiet --no-deps --wheel-dir "$tmp/wheel" "$tmp/src" || status=$?; }
  if [[ $status == 0 ]]; then
    "$py" -m zipfile -e "$tmp"/wheel/saasodoo-*.whl "$site"
    "$py" -m compileall -q "$site/saasodoo" >/dev/null
    printf '#!%s/venv/bin/python3\nimport sys\nfrom saasodoo.cli import main\nsys.exit(main())\n' \
      "$SAASODOO_PREFIX" >"$tmp/root$SAASODOO_PREFIX/venv/bin/saasodoo"
    chmod 0755 "$tmp/root$SAASODOO_PREFIX/venv/bin/saasodoo"
    cp -a "$REPO_ROOT/charts/odoo-tenant" "$tmp/root$SAASODOO_PREFIX/charts/odoo-tenant"
    cp -a "$REPO_ROOT/values" "$tmp/root$SAASODOO_PREFIX/values"
    install -m 0755 "$(tool_bin helm4 helm)" "$tmp/root/usr/local/bin/helm"
    tar -C "$tmp/root" --owner=0 --group=0 --mtime=@0 -cf "$out" opt usr || status=$?
  fi
  rm -rf "$tmp"
  return "$status"
}

# layers NAME: the root filesystems an image is made of, bottom first.
layers() {
  case $1 in
    odoo) echo odoo pgclient ;;
    saasodoo) echo saasodoo saasodooapp ;;
    *) echo "$1" ;;
  esac
}

# rootfs_key NAME: hash of everything the root filesystem is made from.
rootfs_key() {
  local name=$1
  {
    echo "$name"
    declare -f "rootfs_$name" sources system_user odoo_packages
    printf '%s\n' "${MMDEBSTRAP_COMMON[@]}"
    case $name in
      pause) cat "$IMAGES_SRC/pause/pause.c"; gcc --version | head -n 1 ;;
      coredns | traefik | gotrue | versitygw) declare -f rootfs_static; sha256sum <"$(tool_bin "$name" "$name")" ;;
      postgres) echo "$POSTGRES_SUITE $POSTGRES_MAJOR" ;;
      odoo) echo "$ODOO_SUITE $POSTGRES_MAJOR $ODOO_EXTRA_PACKAGES"; sha256sum <"$ODOO_SOURCE"; cat "$ODOO_APT_PACKAGES" ;;
      pgclient) echo "$POSTGRES_SUITE $POSTGRES_MAJOR" ;;
      saasodoo) declare -f saasodoo_version host_python; echo "$SAASODOO_SUITE $SAASODOO_PREFIX"
        sed -n '/^dependencies = \[/,/^\]/p' "$REPO_ROOT/pyproject.toml" ;;
      saasodooapp) echo "$SAASODOO_PYTHON $SAASODOO_PREFIX"; sha256sum <"$(tool_bin helm4 helm)"
        (cd "$REPO_ROOT" && git ls-files -s pyproject.toml saasodoo charts/odoo-tenant values
         git diff --no-ext-diff HEAD -- pyproject.toml saasodoo charts/odoo-tenant values
         git ls-files --others --exclude-standard -- saasodoo charts/odoo-tenant values |
           xargs -r sha256sum) ;;
    esac
  } | sha256sum | cut -c1-16
}

# --- image configuration (umoci config arguments) ---

config_busybox() {
  echo --config.cmd=sh "--config.env=$PATH_ENV"
}
config_pause() {
  echo --config.entrypoint=/pause --config.user=65535:65535
}
config_coredns() {
  echo --config.entrypoint=/coredns --config.user=65534:65534 --config.exposedports=53/udp \
    --config.exposedports=53/tcp
}
config_traefik() {
  echo --config.entrypoint=/traefik --config.user=65532:65532 --config.exposedports=80/tcp
}
config_gotrue() {
  echo --config.entrypoint=/gotrue --config.user=65532:65532 --config.exposedports=9999/tcp
}
# versitygw (scripts/s3.sh): the S3 API on 7070; the command line (backend, data directory) and
# the root credentials (ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY) come from the pod.
config_versitygw() {
  echo --config.entrypoint=/versitygw --config.user=65532:65532 --config.exposedports=7070/tcp
}
config_postgres() {
  echo --config.entrypoint=/usr/local/bin/docker-entrypoint.sh --config.cmd=postgres \
    "--config.env=PATH=/usr/lib/postgresql/$POSTGRES_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --config.env=LANG=C.UTF-8 "--config.env=PG_MAJOR=$POSTGRES_MAJOR" \
    --config.env=PGDATA=/var/lib/postgresql/data \
    --config.exposedports=5432/tcp --config.volume=/var/lib/postgresql/data --config.stopsignal=SIGINT
}
config_saasodoo() {
  echo "--config.entrypoint=$SAASODOO_PREFIX/venv/bin/saasodoo" --config.user=10001:10001 \
    "--config.env=PATH=$SAASODOO_PREFIX/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --config.env=LANG=C.UTF-8 --config.env=HOME=/tmp --config.env=MALLOC_ARENA_MAX=2 \
    "--config.env=SAASODOO_CHART=$SAASODOO_PREFIX/charts/odoo-tenant" \
    "--config.env=SAASODOO_PLANS_DIR=$SAASODOO_PREFIX/values" \
    --config.env=SAASODOO_HELM_BINARY=/usr/local/bin/helm --config.exposedports=8080/tcp
}
config_odoo() {
  echo --config.entrypoint=/entrypoint.sh --config.cmd=odoo "--config.env=$PATH_ENV" \
    --config.env=LANG=C.UTF-8 --config.env=ODOO_VERSION=18.0 --config.env=ODOO_RC=/etc/odoo/odoo.conf \
    --config.user=odoo --config.exposedports=8069/tcp --config.exposedports=8071/tcp \
    --config.exposedports=8072/tcp --config.volume=/var/lib/odoo --config.volume=/mnt/extra-addons
}

# image_key NAME: hash of its root filesystems, this folder's files and the config.
image_key() {
  local name=$1 layer
  {
    declare -f layers
    image_ref "$name"
    for layer in $(layers "$name"); do rootfs_key "$layer"; done
    "config_$name"
    declare -f pack_image
    if [[ -d $IMAGES_SRC/$name ]]; then
      (cd "$IMAGES_SRC/$name" && find . -type f ! -name '*.c' -print0 | sort -z | xargs -0r sha256sum)
      (cd "$IMAGES_SRC/$name" && find . -type f ! -name '*.c' -printf '%p %m\n' | sort)
    fi
  } | sha256sum | cut -c1-16
}

# pack_image NAME OUT ROOTFS...: the root filesystems + images/NAME/files/ as layers, docker-archive OUT.
pack_image() {
  local name=$1 out=$2 ref work rootfs
  shift 2
  ref=$(image_ref "$name")
  work=$(mktemp -d)
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:img"
  for rootfs in "$@"; do
    umoci raw add-layer --image "$work/oci:img" "$rootfs"
  done
  if [[ -d $IMAGES_SRC/$name/files ]]; then
    # Regular files only: the directories (and their owners) stay those of the rootfs. Files
    # are root's unless images/NAME/owners says otherwise ("PATH UID:GID" lines).
    local owners=$IMAGES_SRC/$name/owners path owner
    (cd "$IMAGES_SRC/$name/files" && find . -type f -printf '%P\n' | sort |
      grep -vxF -f <(awk '{print $1}' "$owners" 2>/dev/null || true) |
      tar --no-recursion -T - --owner=0 --group=0 --mtime=@0 -cf "$work/files.tar")
    if [[ -f $owners ]]; then
      while read -r path owner; do
        tar -C "$IMAGES_SRC/$name/files" --owner="${owner%:*}" --group="${owner#*:}" --mtime=@0 \
          -rf "$work/files.tar" "$path"
      done <"$owners"
    fi
    umoci raw add-layer --image "$work/oci:img" "$work/files.tar"
  fi
  # shellcheck disable=SC2046 # one word per option
  umoci config --image "$work/oci:img" --os=linux --architecture=amd64 $("config_$name")
  rm -f "$out.partial"
  skopeo copy --quiet "oci:$work/oci:img" "docker-archive:$out.partial:$ref"
  mv "$out.partial" "$out"
  rm -rf "$work"
}

# ensure_rootfs NAME: print the cached root filesystem of NAME, building it when missing.
ensure_rootfs() {
  local name=$1 rkey rootfs start=$SECONDS
  rkey=$(rootfs_key "$name")
  rootfs=$IMAGE_CACHE/rootfs-$name-$rkey.tar
  if [[ ! -f $rootfs ]]; then
    info "$name: building its root filesystem (log: $IMAGE_CACHE/$name.log)"
    rm -f "$rootfs.partial"
    if ! "rootfs_$name" "$rootfs.partial" >"$IMAGE_CACHE/$name.log" 2>&1; then
      rm -f "$rootfs.partial"
      err "$name: root filesystem build failed; last lines of $IMAGE_CACHE/$name.log:"
      tail -n 25 "$IMAGE_CACHE/$name.log" | sed 's/^/    /' >&2
      return 1
    fi
    mv "$rootfs.partial" "$rootfs"
    # Older root filesystems of this name are superseded.
    find "$IMAGE_CACHE" -maxdepth 1 -name "rootfs-$name-*.tar" ! -name "rootfs-$name-$rkey.tar" -delete
    info "$name: root filesystem $(du -h "$rootfs" | cut -f1) in $((SECONDS - start))s"
  fi
  echo "$rootfs"
}

# build_image NAME: print NAME=ARCHIVE, building the root filesystems and the archive when not cached.
build_image() {
  local name=$1 ikey archive layer rootfs=()
  ikey=$(image_key "$name")
  archive=$IMAGE_CACHE/$name-$ikey.tar
  mkdir -p "$IMAGE_CACHE"
  if [[ ! -f $archive ]]; then
    for layer in $(layers "$name"); do
      rootfs+=("$(ensure_rootfs "$layer")") || return 1
    done
    local t=$SECONDS
    pack_image "$name" "$archive" "${rootfs[@]}" >>"$IMAGE_CACHE/$name.log" 2>&1 ||
      { err "image $name: packing failed; see $IMAGE_CACHE/$name.log"; return 1; }
    find "$IMAGE_CACHE" -maxdepth 1 -name "$name-*.tar" ! -name "$name-$ikey.tar" -delete
    info "image $name ($(image_ref "$name")): $(du -h "$archive" | cut -f1), packed in $((SECONDS - t))s"
  fi
  echo "$name=$archive"
}

main() {
  local images=("$@")
  if [[ ${1:-} == --archives ]]; then
    for n in "${ALL_IMAGES[@]}"; do
      echo "$n=$IMAGE_CACHE/$n-$(image_key "$n").tar"
    done
    return 0
  fi
  if [[ ${1:-} == --refs ]]; then
    for n in "${ALL_IMAGES[@]}"; do echo "$n=$(image_ref "$n")"; done
    return 0
  fi
  [[ ${#images[@]} -gt 0 ]] || images=("${ALL_IMAGES[@]}")
  for n in "${images[@]}"; do
    image_ref "$n" >/dev/null || { err "unknown image '$n' (known: ${ALL_IMAGES[*]})"; exit 2; }
    build_image "$n"
  done
}

main "$@"
