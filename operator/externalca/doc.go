// Package externalca is the bridge between swarmkit's external CA client and Vault PKI: an HTTPS server
// speaking CFSSL's sign protocol (POST /api/v1/cfssl/sign) as swarmkit's ca/external.go sends it, which
// accepts only this swarm's managers (mutual TLS), signs through Vault with the subject swarmkit asked for
// (never the CSR's own) and never holds a CA key.
package externalca
