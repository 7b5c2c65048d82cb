#!/bin/sh
# Nightly audit export: every event of the organization exactly once, one
# file per run, each verified and checked to continue the one before.
#
# Environment (from the CI's secret store and settings):
#   KUBE_DC_CLIENT_ID, KUBE_DC_CLIENT_SECRET  a service account (a confidential
#                           client with client credentials) that is an
#                           organization admin; kube-dc signs in with it itself
#   KUBE_DC_ISSUER          its identity provider (https://login.DOMAIN/realms/ORG),
#                           or KUBE_DC_DOMAIN with KUBE_DC_ORG
#   KUBE_DC_SERVER          the backend (https://backend.DOMAIN), or KUBE_DC_DOMAIN
#   KUBE_DC_ORG             the organization
#   AUDIT_DIR               where the files and the cursor live (default ./audit);
#                           keep it between runs (a CI cache or artifact store)
#   KUBE_DC                 the kube-dc binary (default: kube-dc on PATH)
set -eu
kube="${KUBE_DC:-kube-dc}"
dir="${AUDIT_DIR:-audit}"
mkdir -p "$dir"
# Numbered, then dated: two runs in the same second never share a name,
# and the files sort in the order they were written.
n=$(($(ls "$dir"/audit-*.csv 2>/dev/null | wc -l) + 1))
out="$dir/audit-$(printf %06d "$n")-$(date -u +%Y%m%dT%H%M%SZ).csv"

# The events after the cursor's, into a new file; the cursor moves only once
# the file is complete.
"$kube" audit list --csv --cursor "$dir/cursor.json" --output-file "$out"

if [ "$(wc -l <"$out")" -le 1 ]; then
  echo "no new audit events" >&2
  rm -f "$out"
  exit 0
fi

# Each file's hashes, and that it continues the previous export.
previous="$(ls "$dir"/audit-*.csv | sort | grep -v -x -F "$out" | tail -n 1 || true)"
if [ -n "$previous" ]; then
  "$kube" audit verify "$previous" "$out"
else
  "$kube" audit verify "$out"
fi
