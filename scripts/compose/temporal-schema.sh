#!/bin/sh
# Creates or upgrades Temporal's two PostgreSQL databases (run by docker compose in the
# temporalio/admin-tools image before the server starts). Safe to run on every `up`:
# existing databases are kept and the schema is only moved forward.
set -eu

SQL_PASSWORD="$(cat /run/secrets/postgres_password)"
export SQL_PASSWORD
schema=/etc/temporal/schema/postgresql/v12

sql() {
  temporal-sql-tool --plugin postgres12 --ep postgresql --port 5432 --user temporal "$@"
}

for db in temporal temporal_visibility; do
  case "$db" in
    temporal) versioned="$schema/temporal/versioned" ;;
    *) versioned="$schema/visibility/versioned" ;;
  esac
  # `create` fails when the database exists; a real connection problem fails the next step.
  sql --db "$db" create || echo "database $db exists"
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$versioned"
done
echo "Temporal schema is up to date"
