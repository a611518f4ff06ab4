// Package secretsync is the Vault to Docker secret sync as a controller loop: the task over the
// secrets package's plan and rollout, its metrics, the /status/secrets body, and the report's secrets.sync.
package secretsync
