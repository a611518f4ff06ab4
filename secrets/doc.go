// Package secrets keeps Docker secrets in step with Vault KV.
//
// It owns the Vault side (connection, AppRole or token auth, token renewal,
// KV v1 and v2 with the mount's version detected), the mappings from a Vault
// path to a Docker secret, the keyed-HMAC naming of each secret version
// (DESIGN.md decision 5), the sync plan (a pure function of what was
// observed) and its rollout through a small [Engine] interface that the
// caller implements over the Docker Engine API.
//
// Only this package imports github.com/hashicorp/vault/api. It never
// imports operator, swarm or the Docker SDK: the types it exchanges with the
// engine ([Secret], [Service], [Task], [SecretRef]) are its own.
//
// Secret material is held in [sensitive.Value] and [Value], whose String, Format,
// LogValue and MarshalJSON print "REDACTED", so a value cannot leak into a
// log line, an error or a report by accident.
package secrets
