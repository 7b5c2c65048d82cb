#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks, from Debian's
# packages: `initdb` and `pg_ctl` run as an unprivileged user (PostgreSQL
# refuses root) in a temporary directory, listening on 127.0.0.1 only.
#
#   scripts/postgres.sh start DIR [PORT]   prints the server's admin URL
#   scripts/postgres.sh stop DIR
#
# Installs the `postgresql` package when it is missing (as root, with
# apt-get). Trust authentication on loopback: a test server, never a
# deployment (the README shows one).
set -euo pipefail
cmd=${1:?usage: postgres.sh start|stop DIR [PORT]}
dir=${2:?usage: postgres.sh start|stop DIR [PORT]}
port=${3:-55432}
user=kube-dc-pg

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "postgres.sh: installing postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  else
    echo "postgres.sh: PostgreSQL is missing: sudo apt-get install -y postgresql" >&2
    exit 1
  fi
fi

# As root: a system user of its own runs the server.
as_user() {
  if [ "$(id -u)" = 0 ]; then
    id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
      chown "$user" "$dir"
      # The server's user must reach its directory (a mktemp -d parent is 0700).
      chmod a+x "$(dirname "$dir")"
    fi
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_user "$bin/initdb" -D "$dir" -U kubedc --auth=trust --locale=C.UTF-8 -E UTF8 >"$dir.initdb.log" 2>&1 \
        || { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    as_user "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300" start >/dev/null
    echo "postgres://kubedc@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_user "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
  restart)
    as_user "$bin/pg_ctl" -D "$dir" -m fast -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300" restart >/dev/null
    ;;
  *)
    echo "postgres.sh: unknown command $cmd (start, stop, restart)" >&2
    exit 2
    ;;
esac
