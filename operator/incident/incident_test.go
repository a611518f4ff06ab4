package incident

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/swarm"
)

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

func TestPlanOrder(t *testing.T) {
	tests := []struct {
		scope   string
		secrets []string
		want    string
	}{
		{"", nil, "join-token-worker,join-token-manager,unlock-key,ca,report"},
		{"", []string{"db", "api"}, "join-token-worker,join-token-manager,unlock-key,ca,secret:db,secret:api,report"},
		{"ca,tokens", nil, "join-token-worker,join-token-manager,ca,report"},
		{"secrets", []string{"db"}, "secret:db,report"},
	}
	for _, tc := range tests {
		scope, err := ParseScope(tc.scope)
		if err != nil {
			t.Fatalf("ParseScope(%q) = %v", tc.scope, err)
		}
		var keys []string
		for _, s := range Plan(scope, tc.secrets) {
			keys = append(keys, s.Key())
			if s.Status != StatusPlanned {
				t.Errorf("Plan step %s status %s; want planned", s.Key(), s.Status)
			}
		}
		if got := strings.Join(keys, ","); got != tc.want {
			t.Errorf("Plan(%q, %v) = %s; want %s", tc.scope, tc.secrets, got, tc.want)
		}
	}
	if _, err := ParseScope("tokens,certs"); err == nil || !strings.Contains(err.Error(), `"certs"`) {
		t.Errorf("ParseScope(tokens,certs) = %v; want an error naming certs", err)
	}
	for _, id := range []string{"", "a b", "x/y", strings.Repeat("a", 65)} {
		if CheckID(id) == nil {
			t.Errorf("CheckID(%q) = nil; want an error", id)
		}
	}
	if id := NewID(t0); CheckID(id) != nil || !strings.HasPrefix(id, "inc-20261202-030000-") {
		t.Errorf("NewID = %q", id)
	}
}

// recorder is a set of actions that log what they did; fail names a step that fails once.
type recorder struct {
	led  *ledgertest.Ledger
	did  []string
	fail string
}

func (r *recorder) actions() map[string]Action {
	do := func(ctx context.Context, s Step, env operator.TaskEnv) (Outcome, error) {
		if s.Key() == r.fail {
			r.fail = ""
			return Outcome{}, errors.New("vault sealed")
		}
		r.did = append(r.did, s.Key())
		if s.Kind == KindUnlockKey {
			return Outcome{Detail: "autolock is off", Skipped: true}, nil
		}
		return Outcome{Detail: "did " + s.Key()}, nil
	}
	out := map[string]Action{}
	for _, k := range []string{KindWorkerToken, KindManagerToken, KindUnlockKey, KindCA, KindSecret, KindReport} {
		out[k] = Action{Do: do, Plan: func(_ context.Context, s Step) (Outcome, error) {
			return Outcome{Detail: "would " + s.Key(), Skipped: s.Kind == KindUnlockKey}, nil
		}}
	}
	return out
}

func statuses(steps []Step) string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Key()+"="+s.Status)
	}
	return strings.Join(out, ",")
}

// TestRunResumes: a failed step stops the response and is recorded; the rerun with the same ID skips what
// was done (saying so) and takes the rest; a step whose domain entry was written but whose incident record
// was lost counts as done; another ID starts again.
func TestRunResumes(t *testing.T) {
	led := ledgertest.New()
	rec := &recorder{led: led, fail: "ca"}
	r := &Response{ID: "inc-1", Reason: "leak", Ledger: led, Actions: rec.actions()}
	env := operator.TaskEnv{Actor: "ops", Now: func() time.Time { return t0 }}
	steps := Plan(AllScopes, []string{"db"})

	out, err := r.Run(t.Context(), steps, env)
	if err == nil || !strings.Contains(err.Error(), "--id inc-1") {
		t.Fatalf("Run = %v; want the failure with how to resume", err)
	}
	want := "join-token-worker=done,join-token-manager=done,unlock-key=skipped,ca=failed,secret:db=planned,report=planned"
	if got := statuses(out); got != want {
		t.Errorf("first run = %s; want %s", got, want)
	}
	if got := strings.Join(led.Kinds(), ","); got != "incident/ok,incident/ok,incident/ok,incident/failed" {
		t.Errorf("ledger after the first run = %s", got)
	}

	rec.did = nil
	out, err = r.Run(t.Context(), steps, env)
	if err != nil {
		t.Fatalf("rerun = %v", err)
	}
	want = "join-token-worker=skipped,join-token-manager=skipped,unlock-key=skipped,ca=done,secret:db=done,report=done"
	if got := statuses(out); got != want {
		t.Errorf("rerun = %s; want %s", got, want)
	}
	if got := strings.Join(rec.did, ","); got != "ca,secret:db,report" {
		t.Errorf("rerun did %s; want only the steps left", got)
	}
	if !strings.Contains(out[0].Detail, "already done in inc-1") {
		t.Errorf("a skipped step does not say why: %q", out[0].Detail)
	}

	// Preview of the finished incident: everything done, nothing run.
	rec.did = nil
	pv, err := r.Preview(t.Context(), steps)
	if err != nil || len(rec.did) != 0 {
		t.Fatalf("Preview = %v, did %v", err, rec.did)
	}
	if got := statuses(pv); got != "join-token-worker=done,join-token-manager=done,unlock-key=skipped,ca=done,secret:db=done,report=done" {
		t.Errorf("Preview = %s", got)
	}

	// Another ID is another incident: its dry run plans everything.
	r2 := &Response{ID: "inc-2", Reason: "leak", Ledger: led, Actions: rec.actions()}
	pv, _ = r2.Preview(t.Context(), steps)
	if got := statuses(pv); got != "join-token-worker=planned,join-token-manager=planned,unlock-key=skipped,ca=planned,secret:db=planned,report=planned" {
		t.Errorf("Preview of a new incident = %s", got)
	}
}

// TestDomainEntryCountsAsDone: a kill between a token's rotation (its ledger entry carries the incident's
// reason) and the incident's own record: the rerun does not rotate again.
func TestDomainEntryCountsAsDone(t *testing.T) {
	led := ledgertest.New(
		swarm.Entry{Kind: KindWorkerToken, At: t0, Reason: Reason("inc-7", "leak"), Result: swarm.ResultOK},
		swarm.Entry{Kind: KindManagerToken, At: t0, Reason: Reason("inc-other", "leak"), Result: swarm.ResultOK},
		swarm.Entry{Kind: swarm.KindCA, At: t0, Reason: Reason("inc-7", "leak"), Result: swarm.ResultOK, Details: map[string]string{"action": "started"}},
	)
	rec := &recorder{led: led}
	r := &Response{ID: "inc-7", Reason: "leak", Ledger: led, Actions: rec.actions()}
	out, err := r.Run(t.Context(), Plan([]string{ScopeTokens, ScopeCA}, nil), operator.TaskEnv{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.did, ","); got != "join-token-manager,ca,report" {
		t.Errorf("did %s; want the worker token skipped (its rotation is recorded), the CA followed (only started)", got)
	}
	if out[0].Status != StatusSkipped {
		t.Errorf("worker step = %+v; want skipped", out[0])
	}
}

func TestRunLedgerUnreadable(t *testing.T) {
	led := ledgertest.New()
	led.ReadErr = errors.New("config object unreadable")
	rec := &recorder{led: led}
	r := &Response{ID: "inc-1", Reason: "x", Ledger: led, Actions: rec.actions()}
	if _, err := r.Run(t.Context(), Plan(AllScopes, nil), operator.TaskEnv{}); err == nil || len(rec.did) != 0 {
		t.Errorf("Run with an unreadable ledger = %v, did %v; want an error and nothing done", err, rec.did)
	}
}

// TestResumedCAStepKnowsItsRotation: the ca step of a resumed incident is told the rotation this incident
// started (its ca entry "started", not another incident's), so it follows that one instead of starting
// another; Preview shows the same.
func TestResumedCAStepKnowsItsRotation(t *testing.T) {
	led := ledgertest.New(
		swarm.Entry{Kind: swarm.KindCA, At: t0, Reason: Reason("inc-7", "leak"), Result: swarm.ResultOK,
			Details: map[string]string{"action": "started", "force_rotate": "4", "old_root_serial": "0a"}},
		swarm.Entry{Kind: swarm.KindCA, At: t0, Reason: Reason("inc-7", "leak"), Result: swarm.ResultFailed, Details: map[string]string{"action": "wait-failed"}},
		swarm.Entry{Kind: swarm.KindCA, At: t0, Reason: Reason("inc-8", "leak"), Result: swarm.ResultOK, Details: map[string]string{"action": "started", "force_rotate": "5"}},
	)
	var got []map[string]string
	acts := map[string]Action{
		KindCA: {
			Plan: func(_ context.Context, s Step) (Outcome, error) { got = append(got, s.Started); return Outcome{}, nil },
			Do: func(_ context.Context, s Step, _ operator.TaskEnv) (Outcome, error) {
				got = append(got, s.Started)
				return Outcome{Detail: "followed"}, nil
			},
		},
		KindReport: {Do: func(context.Context, Step, operator.TaskEnv) (Outcome, error) { return Outcome{}, nil }},
	}
	steps := Plan([]string{ScopeCA}, nil)
	for _, id := range []string{"inc-7", "inc-9"} {
		got = nil
		r := &Response{ID: id, Reason: "resume", Ledger: led, Actions: acts}
		if _, err := r.Preview(t.Context(), steps); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(t.Context(), steps, operator.TaskEnv{Now: func() time.Time { return t0 }}); err != nil {
			t.Fatal(err)
		}
		want := "4"
		if id != "inc-7" {
			want = ""
		}
		if len(got) != 2 || got[0]["force_rotate"] != want || got[1]["force_rotate"] != want {
			t.Errorf("%s: the ca step's Plan and Do were told %v; want force_rotate %q both times", id, got, want)
		}
	}
}
