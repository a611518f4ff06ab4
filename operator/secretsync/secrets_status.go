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
// (no mapping configured), which shows as an empty list. Each mapping's error is served as its cause class
// (operator.Cause): the text, which holds Vault's or the engine's own words, stays in the log.
func NewSecretsStatus(ls operator.LeaseStatus, states []SecretState) SecretsStatus {
	out := make([]SecretState, len(states))
	for i, st := range states {
		st.Error = st.Cause
		out[i] = st
	}
	return SecretsStatus{Role: ls.Role, Holder: ls.Holder, Secrets: out}
}
