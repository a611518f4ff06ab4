# The least Vault policy swarmguard needs. Attach it to swarmguard's AppRole
# (vault write auth/approle/role/swarmguard token_policies=swarmguard) or token:
#   vault policy write swarmguard configs/vault-policy.hcl
#
# The paths assume the KV v2 mount "secret/" (Vault's default). Adjust the
# first path segment to your mounts, and narrow "secret/data/apps/*" to the
# paths your secrets.mappings[].from.path name. For a KV v1 mount, grant
# "read" on the path itself (e.g. path "kv/apps/*") instead of data/ and metadata/.

# secrets.mappings: read the mapped values and their metadata (versions).
path "secret/data/apps/*" {
  capabilities = ["read"]
}
path "secret/metadata/apps/*" {
  capabilities = ["read"]
}

# KV version detection, as `vault kv get` does it: which mount a path is on
# and whether it is KV v1 or v2.
path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}

# autolock: escrow of the unlock key (secret/swarmguard/<swarm ID>/unlock-key),
# written with check-and-set and read back before the rotation counts as done.
path "secret/data/swarmguard/*" {
  capabilities = ["create", "update", "read"]
}
path "secret/metadata/swarmguard/*" {
  capabilities = ["read"]
}

# tokens.publish.vault_path: where the join tokens are published, if set.
path "secret/data/swarm/join-tokens" {
  capabilities = ["create", "update", "read"]
}
path "secret/metadata/swarm/join-tokens" {
  capabilities = ["read"]
}

# The token keeps itself alive (vault.auth: the lifetime watcher) and checks itself.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# At exit swarmguard revokes the token it logged in for (AppRole), so a finished
# command or a stopped replica leaves no live token behind.
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# pki.external_ca (the bridge, when enabled): sign node certificates through the
# two roles (the subject's O and OU come from the role, so the bridge reads each
# role first and refuses to sign through one that would give another subject),
# and issue the bridge's own server certificate. Adjust "pki-swarm" and the role
# names to pki.external_ca.mount, manager_role, worker_role and server_role.
# No path here reads or exports a CA key: Vault signs, the key stays inside it.
path "pki-swarm/sign/swarm-manager" {
  capabilities = ["create", "update"]
}
path "pki-swarm/sign/swarm-worker" {
  capabilities = ["create", "update"]
}
path "pki-swarm/roles/swarm-manager" {
  capabilities = ["read"]
}
path "pki-swarm/roles/swarm-worker" {
  capabilities = ["read"]
}
path "pki-swarm/issue/swarmguard-bridge" {
  capabilities = ["create", "update"]
}
