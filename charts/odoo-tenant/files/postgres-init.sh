#!/bin/bash
# Run once by the official postgres image on an empty data directory
# (/docker-entrypoint-initdb.d), after it created the database $POSTGRES_DB.
# Creates the role Odoo connects with: owner of the tenant database, no superuser, no CREATEDB,
# no CREATEROLE. Its password comes from the environment (a Secret), never from a file here.
set -euo pipefail

: "${ODOO_DB_USER:?}" "${ODOO_DB_PASSWORD:?}" "${POSTGRES_DB:?}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
  --set=role="$ODOO_DB_USER" --set=password="$ODOO_DB_PASSWORD" --set=db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'password';
ALTER DATABASE :"db" OWNER TO :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
echo "odoo-tenant: role $ODOO_DB_USER created, owner of database $POSTGRES_DB"
