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
