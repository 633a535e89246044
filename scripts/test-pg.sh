#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (and for trying recupera on
# PostgreSQL by hand): a cluster in a temporary folder, listening only on a
# Unix socket in that folder (no TCP port, no clash with any server on
# 5432), fsync off. It is stopped and removed when this script exits.
#
#   scripts/test-pg.sh                      # runs `cargo test` against it
#   scripts/test-pg.sh cargo test flow::    # any command
#   scripts/test-pg.sh bash                 # a shell with RECUPERA_TEST_PG_URL set
#
# The command runs with RECUPERA_TEST_PG_URL=postgresql:///postgres?host=DIR&port=5432&user=recupera
# and RECUPERA_TEST_PG=required (the PostgreSQL tests fail, never skip).
# Without this script `cargo test` starts such a cluster by itself when
# PostgreSQL is installed; CI (.ci/run) uses this script.
#
# As root, initdb and the server run as the `postgres` user (initdb refuses
# root; there is no sudo here: runuser).
set -euo pipefail

bindir=""
if command -v initdb >/dev/null 2>&1; then
    bindir="$(dirname "$(command -v initdb)")"
else
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && bindir="$d"
    done
fi
if [ -z "$bindir" ]; then
    echo "test-pg.sh: PostgreSQL is not installed (apt-get install -y postgresql)" >&2
    exit 1
fi

# As the postgres user when root, and without libpq's variables: initdb,
# pg_ctl and the server read PGPORT and the like (an exported PGPORT would
# move the socket; a bad one fails initdb).
as_pg() {
    local clean=(env)
    for v in $(compgen -e); do
        case $v in PG*) clean+=(-u "$v") ;; esac
    done
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "${clean[@]}" "$@"
    else
        "${clean[@]}" "$@"
    fi
}

dir="$(mktemp -d /tmp/recupera-pg.XXXXXX)"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
cleanup() {
    as_pg "$bindir/pg_ctl" -D "$dir/data" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

as_pg "$bindir/initdb" -D "$dir/data" -U recupera --auth=trust --no-sync -E UTF8 >/dev/null
as_pg "$bindir/pg_ctl" -D "$dir/data" -w -l "$dir/log" \
    -o "-c listen_addresses='' -k $dir -c port=5432 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null

# The port named on both sides: an exported PGPORT moves neither.
export RECUPERA_TEST_PG_URL="postgresql:///postgres?host=$dir&port=5432&user=recupera"
export RECUPERA_TEST_PG=required
echo "test-pg.sh: PostgreSQL $("$bindir/postgres" --version | awk '{print $NF}') at $RECUPERA_TEST_PG_URL" >&2

if [ "$#" -eq 0 ]; then
    set -- cargo test
fi
"$@"
