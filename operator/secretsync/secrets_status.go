package secretsync

import "github.com/swarmguard/swarmguard/operator"

// SecretsStatus is the /status/secrets body: each mapping's sync state as this replica knows it. Only the
// lease holder syncs, so a standby's mappings stay pending until it takes the lease.
type SecretsStatus struct {
	Role    string        `json:"role"`
	Holder  string        `json:"holder"`
	Secrets []SecretState `json:"secrets"`
}

// NewSecretsStatus is the /status/secrets body of a replica whose lease status is ls: states may be nil
// (no mapping configured), which shows as an empty list.
func NewSecretsStatus(ls operator.LeaseStatus, states []SecretState) SecretsStatus {
	if states == nil {
		states = []SecretState{}
	}
	return SecretsStatus{Role: ls.Role, Holder: ls.Holder, Secrets: states}
}
