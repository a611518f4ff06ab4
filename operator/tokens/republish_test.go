package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/domaintest"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/operator/report"
)

// auditLines are the audit records an auditor logged as JSON, one decoded record each.
func auditLines(t *testing.T, logs string) []audit.Record {
	t.Helper()
	var out []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var l struct {
			Msg    string       `json:"msg"`
			Record audit.Record `json:"record"`
		}
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if l.Msg == "audit" {
			out = append(out, l.Record)
		}
	}
	return out
}

// TestRepublisherRunsWithThePassEnv: the root CA follow-through's republish, run by a controller pass, writes
// the tokens with that pass's env: its audit record names the controller's actor (not the CLI's), and it
// is refused, writing nothing, when the pass's guard says the lease was lost (issue 22, item 5).
func TestRepublisherRunsWithThePassEnv(t *testing.T) {
	cfg := config.DefaultConfig().Tokens
	if (&Tokens{Config: cfg}).Republisher() != nil {
		t.Fatal("Republisher() without tokens.publish.vault_path is not nil; want nil (nothing to republish)")
	}
	cfg.Publish.VaultPath = "secret/swarm/join-tokens"
	lost := fmt.Errorf("lease %q is now held by B/x: %w", "swarmguard-lease", operator.ErrLeaseLost)
	for _, tc := range []struct {
		name   string
		guard  error
		writes int
	}{{"holder", nil, 1}, {"lease lost", lost, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			eng, pub := newTokEngine(), &tokPublisher{}
			tk := &Tokens{Engine: eng, Config: cfg, Publisher: func(context.Context) (TokenPublisher, error) { return pub, nil }}
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			aud := audit.New(t.Context(), log, nil)
			ctx := audit.With(t.Context(), aud)
			checks := 0
			env := operator.TaskEnv{Actor: "operator:node1", Log: log, Now: func() time.Time { return tokT0 },
				Guard: operator.CheckOnly(func(context.Context) error { checks++; return tc.guard })}
			err := tk.Republisher()(ctx, env)
			aud.Close(t.Context())
			recs := auditLines(t, logs.String())
			switch {
			case tc.guard == nil && (err != nil || pub.writes != 1 || len(recs) != 1):
				t.Fatalf("republish as the holder = %v, %d writes, %d audit records; want nil, 1, 1", err, pub.writes, len(recs))
			case tc.guard != nil && (!errors.Is(err, operator.ErrLeaseLost) || pub.writes != 0 || len(recs) != 0):
				t.Fatalf("republish after the lease was lost = %v, %d writes, %d audit records; want ErrLeaseLost, 0, 0", err, pub.writes, len(recs))
			}
			if checks != 1 {
				t.Errorf("the guard was checked %d times; want once, before the write", checks)
			}
			for _, r := range recs {
				if r.Actor != "operator:node1" || r.Kind != AuditKindPublish || r.Result != "ok" || r.Details["vault_path"] != cfg.Publish.VaultPath {
					t.Errorf("audit record = %+v; want the pass's actor operator:node1, kind %s, ok, the vault path", r, AuditKindPublish)
				}
			}
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			domaintest.NoSecret(t, []string{logs.String(), msg}, "secretpart")
		})
	}
}

// TestRunRefreshesItsGauges: the tokens pass hands its own section's gauges, from what it read, to Gauges
// (issue 22, item 3): no other loop rebuilds them.
func TestRunRefreshesItsGauges(t *testing.T) {
	eng := newTokEngine()
	calls := 0
	var got []report.Gauge
	tk := &Tokens{Engine: eng, Ledger: ledgertest.New(), Config: tokConfig(), Gauges: func(g []report.Gauge) { calls++; got = g }}
	if err := tk.Run(t.Context(), operator.TaskEnv{Actor: "operator:n1", Now: func() time.Time { return tokT0 }}); err != nil {
		t.Fatal(err)
	}
	cl, _ := eng.Cluster(t.Context())
	want := SectionGauges(tk.Config, cl, nil, tokT0) // what the pass read: the swarm, an empty ledger
	if calls != 1 || fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
		t.Fatalf("Run handed Gauges %d time(s) %v; want once %v", calls, got, want)
	}
	found := false
	for _, g := range got {
		found = found || g.Name == report.MetricCheckStatus && g.Labels["check"] == "tokens.age"
	}
	if !found {
		t.Errorf("gauges %v lack swarmguard_check_status{check=tokens.age}", got)
	}
}
