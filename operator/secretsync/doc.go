// Package secretsync is the Vault to Docker secret sync: observe the engine (the swarm adapter's own types,
// through the consumer-side Engine interface) and Vault (the secrets package's reads and rendering), decide
// each mapping's plan (a pure function of the observation and the rendered value), and act on it: create the
// wanted version, roll each service onto it with swarm's one rollout wait, remove old versions. Around it: the
// controller loop, the ledger entries, its metrics, the /status/secrets body and the report's secrets.sync.
package secretsync
