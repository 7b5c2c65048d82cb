#!/usr/bin/env bash
# The whole test suite. Needs Node.js/npm, and (Debian packages) dbus,
# gnome-keyring and chromium: .ci/run installs them.
#  - installs the test OIDC provider's pinned npm packages (npm ci),
#  - starts a private D-Bus session with an unlocked gnome-keyring (the
#    real Secret Service) under a throwaway HOME,
#  - runs `cargo test --workspace --locked` inside it.
set -euo pipefail
cd "$(dirname "$0")/.."

(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)

# The fast tier: everything but the login suite (no browser, no keyring).
if [ "${1:-}" = "--fast" ]; then
  shift
  cargo test --locked -p kube-dc-api -p kube-dc-backend "$@"
  exec cargo test --locked -p kube-dc --lib --bins \
    --test local --test wire --test remote --test production --test generated --test shells "$@"
fi

for tool in dbus-run-session gnome-keyring-daemon node; do
  command -v "$tool" >/dev/null || { echo "scripts/test.sh: $tool is missing (see .ci/run for the packages)" >&2; exit 1; }
done

# cargo and rustup keep their own homes; the keyring gets a fresh one.
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT

HOME="$keyring_home" dbus-run-session -- sh -c '
  echo -n test-keyring-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null &&
  cargo test --workspace --locked "$@"
' sh "$@"
