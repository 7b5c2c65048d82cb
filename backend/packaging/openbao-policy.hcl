# The OpenBao policy kube-dc-backend needs for `--store openbao`.
#
#   bao policy write kube-dc-backend openbao-policy.hcl
#   bao token create -policy=kube-dc-backend -period=768h
#
# Each project namespace's values live in a KV v2 mount `kv-<namespace>`
# (change the `kv-` below if you start the backend with another
# --openbao-mount-prefix). The backend keeps metadata, elevation grants and
# the audit log in its own SQL store; here it only reads and writes values.

# Create a project's mount the first time a value is written there. Leave
# this out if you create the mounts yourself (`bao secrets enable -path=kv-P
# -version=2 kv`); the backend then names the missing mount in its error.
path "sys/mounts/kv-*" {
  capabilities = ["create", "read", "update"]
}

# Everything inside the kube-dc mounts: versions (written with
# check-and-set) and reads of any version (`kv-P/data/NAME`); the version
# list, the history window and erasing a destroyed secret
# (`kv-P/metadata/NAME`); destroying one version (`kv-P/destroy/NAME`);
# soft delete and restore with the secret (`kv-P/delete/NAME`,
# `kv-P/undelete/NAME`). OpenBao's `*` matches only at the end of a path, so
# one rule covers the mounts; it reaches nothing outside them.
path "kv-*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
