#!/usr/bin/env bash
# Entrypoint of the saasodoo postgres stand-in image: the official image's contract.
#
# First start on an empty $PGDATA: initdb as $POSTGRES_USER (default postgres) with
# $POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust) and
# $POSTGRES_INITDB_ARGS / $POSTGRES_INITDB_WALDIR; remote connections are allowed with
# $POSTGRES_HOST_AUTH_METHOD (default scram-sha-256); $POSTGRES_DB (default: the user's name) is
# created; then /docker-entrypoint-initdb.d/*.sh (run if executable, else sourced), *.sql,
# *.sql.gz, *.sql.xz and *.sql.zst run in name order against a temporary server that listens
# on the Unix socket only. Every POSTGRES_* variable above can come from a file (VAR_FILE).
# Started as root it prepares $PGDATA and the socket directory and drops to postgres (uid 999);
# started as any other user it runs as that user.
set -Eeo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u +%FT%TZ)" "$*"; }
die() { log "error: $*" >&2; exit 1; }

# read_env VAR [DEFAULT]: VAR from the environment or from the file named by VAR_FILE.
read_env() {
  local var=$1 file_var="${1}_FILE" value=${2:-}
  if [[ -n ${!var:-} && -n ${!file_var:-} ]]; then
    die "both $var and $file_var are set; they are exclusive"
  fi
  if [[ -n ${!var:-} ]]; then
    value=${!var}
  elif [[ -n ${!file_var:-} ]]; then
    value=$(<"${!file_var}")
  fi
  export "$var"="$value"
  unset "$file_var"
}

setup_env() {
  read_env POSTGRES_PASSWORD
  read_env POSTGRES_USER postgres
  read_env POSTGRES_DB "$POSTGRES_USER"
  read_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  : "${PGDATA:=/var/lib/postgresql/data}"
  export PGDATA
  DATABASE_EXISTS=
  [[ -s $PGDATA/PG_VERSION ]] && DATABASE_EXISTS=yes
  return 0
}

# As root: create and own the directories postgres writes, then run again as postgres.
prepare_as_root() {
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 00700 "$PGDATA" || true
  chmod 03775 /var/run/postgresql || true
  if [[ -n ${POSTGRES_INITDB_WALDIR:-} ]]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
    chmod 700 "$POSTGRES_INITDB_WALDIR"
  fi
  find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
  find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
}

check_password() {
  [[ -n $DATABASE_EXISTS ]] && return 0
  if [[ -z $POSTGRES_PASSWORD && $POSTGRES_HOST_AUTH_METHOD != trust ]]; then
    die "the database is uninitialized and POSTGRES_PASSWORD is not set: set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without a password"
  fi
  if [[ ${#POSTGRES_PASSWORD} -gt 100 ]]; then
    log "warning: POSTGRES_PASSWORD is longer than 100 characters"
  fi
}

run_initdb() {
  if [[ -n ${POSTGRES_INITDB_WALDIR:-} ]]; then
    POSTGRES_INITDB_ARGS="--waldir $POSTGRES_INITDB_WALDIR $POSTGRES_INITDB_ARGS"
  fi
  local pwfile
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words by contract
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" $POSTGRES_INITDB_ARGS
  rm -f "$pwfile"
}

allow_remote() {
  local method=$POSTGRES_HOST_AUTH_METHOD
  if [[ -z $method ]]; then
    method=$(postgres -C password_encryption -D "$PGDATA" 2>/dev/null || echo scram-sha-256)
  fi
  if [[ $method == trust ]]; then
    log "warning: POSTGRES_HOST_AUTH_METHOD=trust: every connection is allowed without a password"
  fi
  printf '\n# remote connections (docker-entrypoint.sh)\nhost all all all %s\n' "$method" >>"$PGDATA/pg_hba.conf"
}

temp_server_start() {
  PGUSER=$POSTGRES_USER PGPASSWORD=$POSTGRES_PASSWORD \
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -p ${PGPORT:-5432}" start
}

temp_server_stop() {
  PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -m fast -w stop
}

psql_init() {
  PGPASSWORD=$POSTGRES_PASSWORD psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc \
    --username "$POSTGRES_USER" "$@"
}

create_database() {
  [[ $POSTGRES_DB == postgres ]] && return 0
  local exists
  exists=$(psql_init --dbname postgres --set db="$POSTGRES_DB" --tuples-only --no-align \
    <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")
  if [[ -z $exists ]]; then
    psql_init --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
}

run_init_files() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [[ -e $f ]] || continue
    case $f in
      *.sh)
        if [[ -x $f ]]; then
          log "running $f"
          "$f"
        else
          log "sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql) log "running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) log "running $f"; gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB" ;;
      *.sql.xz) log "running $f"; xzcat "$f" | psql_init --dbname "$POSTGRES_DB" ;;
      *.sql.zst) log "running $f"; zstd -dc "$f" | psql_init --dbname "$POSTGRES_DB" ;;
      *) log "ignoring $f" ;;
    esac
  done
}

main() {
  # Options only ("-c x=y"): they are for postgres.
  if [[ ${1:-} == -* ]]; then
    set -- postgres "$@"
  fi
  if [[ ${1:-} != postgres ]]; then
    exec "$@"
  fi
  setup_env
  if [[ $(id -u) == 0 ]]; then
    prepare_as_root
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi
  if [[ -z $DATABASE_EXISTS ]]; then
    check_password
    mkdir -p "$PGDATA"
    chmod 00700 "$PGDATA" || true
    run_initdb
    allow_remote
    export PGPASSWORD=$POSTGRES_PASSWORD
    temp_server_start
    create_database
    run_init_files
    temp_server_stop
    unset PGPASSWORD
    log "PostgreSQL init process complete; ready for start up."
  else
    log "PostgreSQL database directory appears to contain a database; skipping initialization"
  fi
  exec "$@"
}

main "$@"
