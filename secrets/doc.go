// Package secrets is the Vault adapter of the secret sync.
//
// It owns the Vault side (connection, AppRole or token auth, token renewal,
// KV v1 and v2 with the mount's version detected, the unlock key's and join
// tokens' escrow), the mappings from a Vault path to a Docker secret: their
// rendering and the keyed-HMAC naming of each secret version (DESIGN.md
// decision 5). The sync's plan and act (operator/secretsync) and the rollout
// (swarm) are not here.
//
// Only this package imports github.com/hashicorp/vault/api. It never
// imports operator, swarm or the Docker SDK.
//
// Secret material is held in [sensitive.Value] and [Value], whose String, Format,
// LogValue and MarshalJSON print "REDACTED", so a value cannot leak into a
// log line, an error or a report by accident.
package secrets
