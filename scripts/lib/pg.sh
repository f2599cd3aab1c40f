# Throwaway PostgreSQL cluster: initdb + pg_ctl in a temporary directory, a free port on
# 127.0.0.1 only. Source this file, call pg_start (sets PG_URL), and pg_stop when done.
# Installs the server (Debian package `postgresql`) if it is missing and we are root.

pg_find_bin() {
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

# initdb refuses to run as root: run the cluster as the postgres user then.
pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_start() {
  PGBIN=$(pg_find_bin || true)
  if [ -z "$PGBIN" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing PostgreSQL (Debian package postgresql)…" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      PGBIN=$(pg_find_bin)
    else
      echo "PostgreSQL server binaries not found; install the Debian package 'postgresql'" >&2
      return 1
    fi
  fi
  PGDIR=$(pg_as mktemp -d /tmp/daman-pg.XXXXXX)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pg_as "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
  pg_as "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PGDIR -c max_connections=200 ${PG_EXTRA_OPTS:-}" start >/dev/null
  PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

pg_stop() {
  if [ -n "${PGDIR:-}" ]; then
    pg_as "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
    PGDIR=
  fi
}
