// Package integration holds swarmguard's tests against a real Docker Swarm and a real Vault server: the lab
// that integration/lab/lab starts (make lab). The tests carry the build tag "integration"; plain
// `go test ./...` compiles only this file. Run them with `make integration`.
package integration
