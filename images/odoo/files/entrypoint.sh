#!/bin/bash
# Entrypoint of the saasodoo odoo stand-in image: the official image's contract.
#
# `odoo [ARGS]`, `-- [ARGS]` or options only: wait for PostgreSQL (wait-for-psql.py), then run
# Odoo with the database settings below appended; `odoo scaffold ...` and any other command run
# as given. Database settings: db_host/db_port/db_user/db_password from $ODOO_RC when set there,
# else HOST (default db), PORT (5432), USER (POSTGRES_USER, default odoo) and PASSWORD
# (POSTGRES_PASSWORD or the file named by PASSWORD_FILE, default odoo).
set -e

if [[ -n ${PASSWORD_FILE:-} ]]; then
  PASSWORD=$(<"$PASSWORD_FILE")
fi
HOST=${HOST:-${DB_PORT_5432_TCP_ADDR:-db}}
PORT=${PORT:-${DB_PORT_5432_TCP_PORT:-5432}}
USER=${USER:-${DB_ENV_POSTGRES_USER:-${POSTGRES_USER:-odoo}}}
PASSWORD=${PASSWORD:-${DB_ENV_POSTGRES_PASSWORD:-${POSTGRES_PASSWORD:-odoo}}}

DB_ARGS=()
# db_arg NAME DEFAULT: --NAME VALUE, the value from $ODOO_RC if the file sets NAME.
db_arg() {
  local name=$1 value=$2 line
  line=$(grep -E "^\s*${name}\s*=" "${ODOO_RC:-/etc/odoo/odoo.conf}" 2>/dev/null | tail -n 1 || true)
  if [[ -n $line ]]; then
    value=$(sed -E 's/^[^=]*=\s*//; s/["\r]//g; s/\s+$//' <<<"$line")
  fi
  DB_ARGS+=("--$name" "$value")
}
db_arg db_host "$HOST"
db_arg db_port "$PORT"
db_arg db_user "$USER"
db_arg db_password "$PASSWORD"

case ${1:-} in
  -- | odoo)
    shift
    if [[ ${1:-} == scaffold ]]; then
      exec odoo "$@"
    fi
    wait-for-psql.py "${DB_ARGS[@]}" --timeout=30
    exec odoo "$@" "${DB_ARGS[@]}"
    ;;
  -*)
    wait-for-psql.py "${DB_ARGS[@]}" --timeout=30
    exec odoo "$@" "${DB_ARGS[@]}"
    ;;
  *)
    exec "$@"
    ;;
esac
