#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use can be reached: the server at
# $FRESHET_TEST_DATABASE_URL (default: the local one). When that is the local server
# and it is installed but stopped, start it. Fails with what to do otherwise.
set -euo pipefail

url="${FRESHET_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"

reachable() {
	if command -v pg_isready >/dev/null; then
		pg_isready -q -d "$url" -t 2
	elif command -v psql >/dev/null; then
		psql "$url" -Atqc 'select 1' >/dev/null 2>&1
	else
		(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
	fi
}

# Every test makes and drops a schema of its own, leaving dead rows in the system
# catalogs. Where autovacuum is off (it is on some CI and sandbox servers), they
# pile up run after run and slow everything that reads the catalogs, so vacuum the
# tables the tests churn. Best effort: a role that may not is simply skipped.
tidy_catalogs() {
	command -v psql >/dev/null || return 0
	[ "$(psql "$url" -Atqc 'show autovacuum' 2>/dev/null)" = "off" ] || return 0
	psql "$url" -qc 'VACUUM pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_depend,
		pg_catalog.pg_type, pg_catalog.pg_constraint, pg_catalog.pg_index, pg_catalog.pg_trigger,
		pg_catalog.pg_attrdef, pg_catalog.pg_proc, pg_catalog.pg_namespace, pg_catalog.pg_statistic,
		pg_catalog.pg_sequence, pg_catalog.pg_description' >/dev/null 2>&1 || true
}

if reachable; then
	tidy_catalogs
	exit 0
fi

case "$url" in
*@127.0.0.1:5432/* | *@localhost:5432/* | *@127.0.0.1/* | *@localhost/*)
	if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
		for version in $(ls /etc/postgresql); do
			echo "PostgreSQL $version is stopped: starting it" >&2
			pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
		done
		for _ in $(seq 1 30); do
			if reachable; then
				tidy_catalogs
				exit 0
			fi
			sleep 1
		done
	fi
	;;
esac

cat >&2 <<MSG
The Go tests need PostgreSQL and none can be reached at
  $url
Either start a local server (Debian: apt-get install postgresql, then
  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)
or point FRESHET_TEST_DATABASE_URL at one the tests may create schemas in.
MSG
exit 1
