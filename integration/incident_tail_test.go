//go:build integration

package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestIncidentDetailsNoTokenTail: an incident that rotates the join tokens records its steps in the ledger
// (labels of swarmguard-state) and sends audit records to the webhooks; neither holds any join token, old
// or new, nor the last characters of one (what Masked shows a person on a terminal): fingerprints only.
func TestIncidentDetailsNoTokenTail(t *testing.T) {
	env := labEnv(t)
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "swarmguard.yaml")
	body := fmt.Sprintf("tokens: {worker: {max_age: 8760h}, manager: {max_age: 8760h}}\nlease: {ttl: 4s, wait: 60s}\nnotify: {webhooks: [{url: %q}]}\n", srv.URL)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	w0, m0 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
	r := runSG(t, env, nil, "--config", cfg, "incident", "--scope", "tokens", "--reason", "it-incident-tail")
	if r.Code != 0 {
		t.Fatalf("incident --scope tokens exited %d: %s", r.Code, rtTail(r.Stderr, 8))
	}
	w1, m1 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
	if w1 == w0 || m1 == m0 {
		t.Fatalf("incident --scope tokens: worker rotated %v, manager rotated %v; want both", w1 != w0, m1 != m0)
	}
	labels := mustDocker(t, env, "", "config", "inspect", "--format", "{{json .Spec.Labels}}", "swarmguard-state")
	mu.Lock()
	hooks := strings.Join(bodies, "\n")
	mu.Unlock()
	if !strings.Contains(labels, "it-incident-tail") || !strings.Contains(hooks, "it-incident-tail") {
		t.Fatalf("the incident is not in the ledger labels (%d bytes) or the webhook payloads (%d records)", len(labels), len(bodies))
	}
	// No token at all; and not the tail of the tokens this run minted (the ledger may hold the tails of
	// older tokens, written by an older swarmguard: this run's cannot be among them).
	for _, where := range []struct{ name, text string }{{"ledger labels", labels}, {"webhook payloads", hooks}} {
		for i, tok := range []string{w0, m0, w1, m1} {
			tail := "…" + tok[len(tok)-4:]         // the masked form's tail
			escaped := `\u2026` + tok[len(tok)-4:] // the same, JSON-escaped
			minted := i >= 2
			if strings.Contains(where.text, tok) || minted && (strings.Contains(where.text, tail) || strings.Contains(where.text, escaped)) {
				t.Errorf("%s hold token %d (or its last characters)", where.name, i)
			}
		}
	}
	secretScan(t, []string{r.Stdout, r.Stderr}, w0, m0, w1, m1)
}
