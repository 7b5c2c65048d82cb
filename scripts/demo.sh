#!/usr/bin/env bash
# The seed workflow on the embedded local context, end to end, in a
# throwaway data directory (your own local context is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo put the binary, as cargo says (CARGO_TARGET_DIR, a config's
# build.target-dir, ...), not where it usually is.
kube_dc=$(cargo build --release --quiet --bin kube-dc --message-format=json-render-diagnostics |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$kube_dc" ] || { echo "demo.sh: cargo did not report the kube-dc binary" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KUBE_DC_LOCAL_DATA_DIR="$work/local"
mkdir -p "$KUBE_DC_LOCAL_DATA_DIR/manifests"
cat > "$KUBE_DC_LOCAL_DATA_DIR/manifests/app.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: { name: my-app, namespace: local-default }
spec:
  selector: { matchLabels: { app: my-app } }
  template:
    metadata: { labels: { app: my-app } }
    spec:
      containers:
        - name: app
          image: my-app:latest
          envFrom: [ { secretRef: { name: app-config } } ]
YAML
printf '# demo env file\nLOG_LEVEL=debug\nDB_PASSWORD=pa$word\n' > "$work/app.env"

run() { printf '\n$ kube-dc %s\n' "$*"; "$kube_dc" "$@"; }
run secrets create app-config --from-literal=DATABASE_URL=postgres://app@db/app --from-env-file="$work/app.env"
run secrets create api-keys --sync-disabled --from-literal=STRIPE_KEY=sk_test_123
run secrets list
run secrets get app-config
run secrets get app-config --value
run secrets put app-config --from-literal=DATABASE_URL=postgres://app@db2/app --from-literal=LOG_LEVEL=info --from-literal='DB_PASSWORD=n3w-pa$word'
run secrets versions app-config
run secrets sync app-config --keys DATABASE_URL
run secrets consumers app-config
run secrets delete api-keys
run secrets restore api-keys
run secrets delete api-keys --destroy --yes
run audit list --service secrets --since 1h
