#!/usr/bin/env bash
# The performance benchmarks, B1–B7 of the performance issue, B8–B9 of the terminal view and
# B10–B14 and B3' of the OpenBao engine, each measured beside its reference in the same run,
# gathered into one table.
#  - installs wrk, sqlite3, strace and curl (Debian packages) when missing:
#    with apt-get as root, otherwise it prints the command to run;
#  - builds the release binaries once;
#  - installs OpenBao (scripts/install-openbao.sh) for benches/openbao.rs;
#  - runs the backend's benches/server.rs (B1, B2: wrk against
#    kube-dc-backend serve), benches/audit.rs (B3), benches/audit_live.rs
#    (B3': a log made by real requests) and benches/openbao.rs (B10–B14:
#    --store openbao beside OpenBao itself), benches/postgres.rs (B24–B26:
#    B1, B2 with the records on PostgreSQL, one replica and two behind
#    HAProxy; PostgreSQL and HAProxy from Debian's packages), then the CLI's
#    benches/cli.rs (B4–B7) and benches/ui.rs (B8, B9: kube-dc ui's first
#    paint and idle CPU, in a pty of its own).
# BENCH_SECONDS (default 20) sets the length of each wrk run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in wrk sqlite3 strace curl haproxy; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v script >/dev/null || need+=(bsdutils)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "scripts/bench.sh needs: ${need[*]}. Install them with:" >&2
    echo "  sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

KUBE_DC_BAO="$(./scripts/install-openbao.sh)"
export KUBE_DC_BAO
cargo build --release --workspace --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for bench in server audit audit_live openbao watch feed postgres; do
  cargo bench --locked -p kube-dc-backend --bench "$bench" | tee -a "$log"
done
for bench in cli ui; do
  cargo bench --locked -p kube-dc --bench "$bench" | tee -a "$log"
done

echo
echo "| # | measure | figure (this run) | target | |"
echo "|---|---|---|---|---|"
grep -E "^\| B[0-9]+'? \|" "$log" | sort -V
! grep -q 'NOT MET' <(grep -E "^\| B[0-9]+'? \|" "$log")
