#!/usr/bin/env bash
# Make sure PostgreSQL, PgBouncer and Redis server binaries are installed (Debian packages); installs them when
# missing. PgBouncer stands in front of Postgres in the tests that run zart behind a transaction pooler.
# With --browser, also Debian's chromium, which the dashboard's browser tests drive (Playwright, no download).
set -euo pipefail

browser=0
[ "${1:-}" = "--browser" ] && browser=1

have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }
have_redis() { command -v redis-server >/dev/null 2>&1; }
have_pgbouncer() { command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; }
have_chromium() { [ "$browser" -eq 0 ] || command -v chromium >/dev/null 2>&1; }

missing=()
have_postgres || missing+=(postgresql)
have_redis || missing+=(redis-server)
have_pgbouncer || missing+=(pgbouncer)
have_chromium || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing ${missing[*]} ..."
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get is not available: install ${missing[*]} with your package manager" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
have_postgres && have_redis && have_pgbouncer && have_chromium
