// Package swarm is swarmguard's adapter to the Docker Engine API and the home of the swarm-level domain:
// the cluster and its nodes, join tokens and autolock, config, secret, service and network objects, and the
// state ledger kept in the labels of the config object "swarmguard-state".
//
// It is the only package that imports the Docker SDK (github.com/moby/moby/client). Everything it returns is
// one of its own types, so callers never see SDK structs, and every SDK error is mapped to one of the
// sentinel errors below so callers decide with errors.Is, never by matching strings.
package swarm
