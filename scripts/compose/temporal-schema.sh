#!/bin/sh
# Creates or upgrades Temporal's two PostgreSQL databases. docker compose runs it in the
# temporalio/admin-tools image before the server starts; scripts/production-check.sh runs the
# same script against its own PostgreSQL (the variables below point it there). Safe to run on
# every start: existing databases are kept and the schema is only moved forward.
set -eu

SQL_PASSWORD="$(cat "${POSTGRES_PASSWORD_FILE:-/run/secrets/postgres_password}")"
export SQL_PASSWORD
schema="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema}/postgresql/v12"

sql() {
  temporal-sql-tool --plugin postgres12 --ep "${POSTGRES_HOST:-postgresql}" --port "${POSTGRES_PORT:-5432}" \
    --user "${POSTGRES_USER:-temporal}" "$@"
}

for db in temporal temporal_visibility; do
  case "$db" in
    temporal) versioned="$schema/temporal/versioned" ;;
    *) versioned="$schema/visibility/versioned" ;;
  esac
  # `create` fails when the database exists; a real connection problem fails the next step.
  sql --db "$db" create 2>/dev/null || echo "database $db exists"
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$versioned"
done
echo "Temporal schema is up to date"
