#!/bin/bash
# Minimal version of the official postgres entrypoint: initialise an empty data folder
# with the requested superuser, password and database, then run the server.
set -euo pipefail
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
    echo "POSTGRES_PASSWORD is required" >&2
    exit 1
fi
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    printf '%s' "$POSTGRES_PASSWORD" > /tmp/pwfile
    initdb --username="$POSTGRES_USER" --pwfile=/tmp/pwfile --auth-host=scram-sha-256 --auth-local=trust -D "$PGDATA" >/dev/null
    rm -f /tmp/pwfile
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [[ "$POSTGRES_DB" != "postgres" ]]; then
        postgres --single -D "$PGDATA" -c listen_addresses='' postgres <<<"CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" >/dev/null
    fi
fi
exec "$@" -c listen_addresses='*'
