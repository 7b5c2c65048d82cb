#!/usr/bin/env bash
# Builds the Debian packages into target/debian/ (under $CARGO_TARGET_DIR
# when that is set, where cargo and cargo-deb put them): kube-dc (the CLI, its man
# pages, completions for bash, zsh and fish) and kube-dc-backend (the
# server, its man pages, a hardened systemd unit, example configuration).
# Installs the pinned cargo-deb first if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
cargo build --release --workspace --locked
cargo deb --no-build --locked -p kube-dc
cargo deb --no-build --locked -p kube-dc-backend
ls -1 "${CARGO_TARGET_DIR:-target}"/debian/*.deb
