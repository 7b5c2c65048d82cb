#!/usr/bin/env bash
# Installs the packages scripts/package.sh built, as a user would (dpkg -i,
# as root), and checks them from the outside:
#  - `kube-dc --version` runs from /usr/bin;
#  - `kube-dc sec<TAB>` completes in a new interactive bash that loads
#    bash-completion (in tmux, as the shell tests do);
#  - `man -w kube-dc-secrets-create` and `man -w kube-dc-backend-serve`
#    find the installed pages;
#  - `systemd-analyze verify` accepts the backend's unit.
# Installs tmux, bash-completion, man-db and systemd when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "scripts/package-test.sh installs packages: run it as root" >&2; exit 1; }
need=()
for p in tmux bash-completion man-db systemd; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

fail() { echo "package test: $*" >&2; exit 1; }

debs="${CARGO_TARGET_DIR:-target}/debian"
dpkg -i "$debs"/kube-dc_*.deb "$debs"/kube-dc-backend_*.deb >/dev/null

out=$(/usr/bin/kube-dc --version) || fail "kube-dc --version failed"
echo "$out" | grep -q '^kube-dc ' || fail "unexpected version line: $out"
echo "ok: $out"

for page in kube-dc-secrets-create kube-dc kube-dc-backend kube-dc-backend-serve; do
  path=$(man -w "$page") || fail "man -w $page found nothing"
  case "$path" in *.gz) ;; *) fail "$page is not gzipped: $path" ;; esac
  echo "ok: man -w $page -> $path"
done

for f in /usr/share/bash-completion/completions/kube-dc \
         /usr/share/zsh/vendor-completions/_kube-dc \
         /usr/share/fish/vendor_completions.d/kube-dc.fish \
         /usr/share/doc/kube-dc/README.md /usr/share/doc/kube-dc/CHANGELOG.md \
         /usr/share/doc/kube-dc/LICENSE /etc/kube-dc-backend/bindings.example.yaml; do
  [ -s "$f" ] || fail "$f is missing"
done
echo "ok: completions, documents and example configuration installed"

# Completion in a fresh interactive bash that loads bash-completion, which
# finds the installed script by the command's name.
rc=$(mktemp)
home=$(mktemp -d)
trap 'tmux kill-session -t kube-dc-pkg 2>/dev/null || true; rm -rf "$rc" "$home"' EXIT
printf '%s\n' 'source /usr/share/bash-completion/bash_completion' "PS1='pkg\$ '" >"$rc"
HOME="$home" tmux new-session -d -s kube-dc-pkg -x 200 -y 50 "bash --noprofile --rcfile $rc -i"
for _ in $(seq 50); do
  tmux capture-pane -p -t kube-dc-pkg | grep -q 'pkg\$' && break
  sleep 0.1
done
tmux send-keys -t kube-dc-pkg 'kube-dc sec' Tab
completed=""
for _ in $(seq 50); do
  if tmux capture-pane -p -t kube-dc-pkg | grep -q 'pkg\$ kube-dc secrets'; then
    completed=yes
    break
  fi
  sleep 0.1
done
[ -n "$completed" ] || { tmux capture-pane -p -t kube-dc-pkg >&2; fail "kube-dc sec<TAB> did not complete to 'kube-dc secrets'"; }
echo "ok: kube-dc sec<TAB> completes to 'kube-dc secrets' in bash"

unit=$(systemctl show -P FragmentPath kube-dc-backend.service 2>/dev/null || true)
[ -n "$unit" ] || unit=$(ls /lib/systemd/system/kube-dc-backend.service /usr/lib/systemd/system/kube-dc-backend.service 2>/dev/null | head -1)
[ -n "$unit" ] || fail "the backend's unit is not installed"
systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit failed"
echo "ok: systemd-analyze verify $unit"
