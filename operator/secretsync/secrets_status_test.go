package secretsync

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
)

func TestNewSecretsStatus(t *testing.T) {
	ls := operator.LeaseStatus{Role: operator.RoleStandby, Holder: "n0/abc"}
	b, _ := json.Marshal(NewSecretsStatus(ls, nil))
	if !strings.Contains(string(b), `"secrets":[]`) || !strings.Contains(string(b), `"holder":"n0/abc"`) {
		t.Errorf("NewSecretsStatus(no mappings) = %s; want the holder and an empty list", b)
	}
	since := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	b, _ = json.Marshal(NewSecretsStatus(ls, []SecretState{{Name: "db", Source: "secret/db#password", State: "error", FailingSince: since, Error: "vault unreachable"}}))
	if !strings.Contains(string(b), `"failing_since":"2026-05-01T12:00:00Z"`) {
		t.Errorf("NewSecretsStatus(failing) = %s; want failing_since", b)
	}
}

// /status/secrets serves a mapping's error as its cause class only: Vault's or the engine's own words, with
// addresses and paths, stay in the log.
func TestSecretsStatusServesCauseOnly(t *testing.T) {
	raw := "reading \"secret/db\": vault unreachable: Get \"https://vault.internal:8200/v1/secret/data/db\": x509: upstream words"
	st := NewSecretsStatus(operator.LeaseStatus{Role: operator.RoleHolder}, []SecretState{{Name: "db", State: "error", Error: raw, Cause: operator.CauseVaultUnreachable}})
	b, _ := json.Marshal(st)
	if st.Secrets[0].Error != operator.CauseVaultUnreachable || strings.Contains(string(b), "upstream words") || strings.Contains(string(b), "vault.internal") {
		t.Errorf("NewSecretsStatus(failing) = %s; want error %q only", b, operator.CauseVaultUnreachable)
	}
}
