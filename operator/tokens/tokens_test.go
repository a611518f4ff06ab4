package tokens

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/domaintest"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

var tokT0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

// tokEngine is a fake swarm for the join-token pass.
type tokEngine struct {
	id              string
	worker, manager string
	n               int
	calls           []string
	rotateErr       error
}

func newTokEngine() *tokEngine {
	return &tokEngine{id: "swarm1", worker: "SWMTKN-1-digest-worker0secretpart", manager: "SWMTKN-1-digest-manager0secretpart"}
}

func (e *tokEngine) Cluster(context.Context) (swarm.Cluster, error) {
	e.calls = append(e.calls, "cluster")
	return swarm.Cluster{ID: e.id, WorkerToken: sensitive.New(e.worker), ManagerToken: sensitive.New(e.manager)}, nil
}

func (e *tokEngine) RotateJoinTokens(_ context.Context, worker, manager bool) ([]swarm.TokenRotation, error) {
	e.calls = append(e.calls, fmt.Sprintf("rotate worker=%v manager=%v", worker, manager))
	if e.rotateErr != nil {
		return nil, e.rotateErr
	}
	var out []swarm.TokenRotation
	e.n++
	if worker {
		old := e.worker
		e.worker = fmt.Sprintf("SWMTKN-1-digest-worker%dsecretpart", e.n)
		out = append(out, swarm.TokenRotation{Kind: swarm.TokenWorker, Old: sensitive.New(old), New: sensitive.New(e.worker), SwarmID: e.id})
	}
	if manager {
		old := e.manager
		e.manager = fmt.Sprintf("SWMTKN-1-digest-manager%dsecretpart", e.n)
		out = append(out, swarm.TokenRotation{Kind: swarm.TokenManager, Old: sensitive.New(old), New: sensitive.New(e.manager), SwarmID: e.id})
	}
	return out, nil
}

// tokPublisher is a fake Vault for published tokens.
type tokPublisher struct {
	rec      *secrets.TokenRecord
	writes   int
	writeErr error
	readErr  error
}

func (p *tokPublisher) PublishTokens(_ context.Context, path, swarmID string, w, m sensitive.Value, at time.Time) (secrets.Receipt, error) {
	if p.writeErr != nil {
		return secrets.Receipt{}, p.writeErr
	}
	p.writes++
	p.rec = &secrets.TokenRecord{Worker: w, Manager: m, SwarmID: swarmID, Time: at, Version: p.writes}
	return secrets.Receipt{Path: path, Version: p.writes}, nil
}

func (p *tokPublisher) LoadTokens(context.Context, string) (secrets.TokenRecord, error) {
	if p.readErr != nil {
		return secrets.TokenRecord{}, p.readErr
	}
	if p.rec == nil {
		return secrets.TokenRecord{}, secrets.ErrNotFound
	}
	return *p.rec, nil
}

func TestDecideToken(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		name      string
		entries   []swarm.Entry
		maxAge    time.Duration
		adopt     bool
		wantDue   bool
		wantAdopt bool
	}{
		{name: "never seen, adopt", adopt: true, maxAge: day, wantAdopt: true},
		{name: "never seen, no adopt: due", adopt: false, maxAge: day, wantDue: true},
		{name: "never seen, no adopt, no max age", adopt: false, maxAge: 0},
		{name: "rotated recently", entries: []swarm.Entry{domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-time.Hour), "f")}, maxAge: day, adopt: true},
		{name: "rotated long ago", entries: []swarm.Entry{domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-2*day), "f")}, maxAge: day, adopt: true, wantDue: true},
		{name: "exactly max age", entries: []swarm.Entry{domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-day), "f")}, maxAge: day, wantDue: true},
		{name: "adopted long ago", entries: []swarm.Entry{domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultAdopted, tokT0.Add(-2*day), "f")}, maxAge: day, adopt: true, wantDue: true},
		{name: "failed rotation does not reset the clock", entries: []swarm.Entry{
			domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-2*day), "f"),
			domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultFailed, tokT0.Add(-time.Minute), "")}, maxAge: day, adopt: true, wantDue: true},
		{name: "other kind does not count", entries: []swarm.Entry{domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultOK, tokT0, "f")}, maxAge: day, adopt: false, wantDue: true},
		{name: "max age zero never due", entries: []swarm.Entry{domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-900*day), "f")}, maxAge: 0},
		{name: "one second max age", entries: []swarm.Entry{domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-2*time.Second), "f")}, maxAge: time.Second, wantDue: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideToken(swarm.TokenWorker, tc.entries, tc.maxAge, tc.adopt, tokT0)
			if d.Due != tc.wantDue || d.Adopt != tc.wantAdopt {
				t.Errorf("DecideToken() = due %v adopt %v (%s); want due %v adopt %v", d.Due, d.Adopt, d.Why, tc.wantDue, tc.wantAdopt)
			}
			if d.Why == "" {
				t.Errorf("DecideToken() gave no reason")
			}
		})
	}
}

func tokConfig() config.TokensConfig {
	c := config.DefaultConfig().Tokens
	c.Worker.MaxAge = config.Duration(720 * time.Hour)
	c.Manager.MaxAge = config.Duration(168 * time.Hour)
	return c
}

func TestTokensRun(t *testing.T) {
	cases := []struct {
		name        string
		cfg         func(*config.TokensConfig)
		ledger      []swarm.Entry
		publish     bool
		published   bool // the publisher already holds the current tokens
		wantLedger  []string
		wantRotate  string
		wantPublish int
	}{
		{name: "first run adopts both", wantLedger: []string{"join-token-worker/adopted", "join-token-manager/adopted"}},
		{name: "first run without adopt rotates both", cfg: func(c *config.TokensConfig) { c.Adopt = false },
			wantLedger: []string{"join-token-worker/ok", "join-token-manager/ok"}, wantRotate: "rotate worker=true manager=true"},
		{name: "worker due only", ledger: []swarm.Entry{
			domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-721*time.Hour), "x"),
			domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultOK, tokT0.Add(-time.Hour), "y")},
			wantLedger: []string{"join-token-worker/ok", "join-token-manager/ok", "join-token-worker/ok"}, wantRotate: "rotate worker=true manager=false"},
		{name: "nothing due", ledger: []swarm.Entry{
			domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-time.Hour), "x"),
			domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultOK, tokT0.Add(-time.Hour), "y")},
			wantLedger: []string{"join-token-worker/ok", "join-token-manager/ok"}},
		{name: "rotation publishes", publish: true, ledger: []swarm.Entry{
			domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-721*time.Hour), "x"),
			domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultOK, tokT0.Add(-time.Hour), "y")},
			wantLedger: []string{"join-token-worker/ok", "join-token-manager/ok", "join-token-worker/ok"}, wantRotate: "rotate worker=true manager=false", wantPublish: 1},
		{name: "changed outside the ledger is recorded, not rotated again", ledger: []swarm.Entry{
			domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-721*time.Hour), "an-older-token"),
			domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultOK, tokT0.Add(-time.Hour), "y")},
			wantLedger: []string{"join-token-worker/ok", "join-token-manager/ok", "join-token-worker/adopted"}},
		{name: "a new CA digest alone is not a rotation", ledger: []swarm.Entry{
			{Kind: swarm.KindJoinTokenWorker, At: tokT0.Add(-721 * time.Hour), Result: swarm.ResultOK, Details: map[string]string{
				operator.DetailFingerprint:       sensitive.New("SWMTKN-1-olddigest-worker0secretpart").Fingerprint(),
				operator.DetailSecretFingerprint: sensitive.New("worker0secretpart").Fingerprint()}},
			domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultOK, tokT0.Add(-time.Hour), "y")},
			wantLedger: []string{"join-token-worker/ok", "join-token-manager/ok", "join-token-worker/ok"}, wantRotate: "rotate worker=true manager=false"},
		{name: "stale publication is republished", publish: true, ledger: []swarm.Entry{
			domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-time.Hour), "x"),
			domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultOK, tokT0.Add(-time.Hour), "y")},
			wantLedger: []string{"join-token-worker/ok", "join-token-manager/ok"}, wantPublish: 1},
		{name: "current publication is left alone", publish: true, published: true, ledger: []swarm.Entry{
			domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-time.Hour), "x"),
			domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultOK, tokT0.Add(-time.Hour), "y")},
			wantLedger: []string{"join-token-worker/ok", "join-token-manager/ok"}, wantPublish: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tokConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			eng, pub := newTokEngine(), &tokPublisher{}
			// "x" and "y" stand for the fingerprints of the tokens the swarm has now; anything else is a
			// token the swarm no longer has.
			var ledger []swarm.Entry
			for _, e := range tc.ledger {
				d := map[string]string{}
				for k, v := range e.Details {
					d[k] = map[string]string{"x": sensitive.New(eng.worker).Fingerprint(), "y": sensitive.New(eng.manager).Fingerprint()}[v]
					if d[k] == "" {
						d[k] = v
					}
				}
				e.Details = d
				ledger = append(ledger, e)
			}
			led := ledgertest.New(ledger...)
			if tc.publish {
				cfg.Publish.VaultPath = "secret/swarm/join-tokens"
			}
			if tc.published {
				pub.rec = &secrets.TokenRecord{Worker: sensitive.New(eng.worker), Manager: sensitive.New(eng.manager), SwarmID: eng.id}
				pub.writes = 1
			}
			tk := &Tokens{Engine: eng, Ledger: led, Config: cfg, Publisher: func(context.Context) (TokenPublisher, error) { return pub, nil }}
			var logs bytes.Buffer
			if err := tk.Task().Run(t.Context(), domaintest.Env(tokT0, &logs)); err != nil {
				t.Fatalf("Run() = %v", err)
			}
			if got := strings.Join(led.Kinds(), ","); got != strings.Join(tc.wantLedger, ",") {
				t.Errorf("ledger = %s; want %s", got, strings.Join(tc.wantLedger, ","))
			}
			rot := ""
			for _, c := range eng.calls {
				if strings.HasPrefix(c, "rotate") {
					rot = c
				}
			}
			if rot != tc.wantRotate {
				t.Errorf("rotation = %q; want %q", rot, tc.wantRotate)
			}
			if pub.writes != tc.wantPublish {
				t.Errorf("publishes = %d; want %d", pub.writes, tc.wantPublish)
			}
			if tc.wantPublish > 0 && pub.rec.Worker.Reveal() != eng.worker {
				t.Errorf("published worker token is not the current one")
			}
			for _, e := range led.All()[len(tc.ledger):] {
				if e.Actor != "node-a" || !e.At.Equal(tokT0) {
					t.Errorf("entry %s: actor %q at %s; want node-a at %s", e.Kind, e.Actor, e.At, tokT0)
				}
				if e.Result == swarm.ResultOK && (e.Details[operator.DetailOldFingerprint] == "" || e.Details[operator.DetailNewFingerprint] == "" || !strings.HasPrefix(e.Reason, "scheduled: ")) {
					t.Errorf("entry %s: details %v reason %q; want fingerprints and a scheduled reason", e.Kind, e.Details, e.Reason)
				}
			}
			domaintest.NoSecret(t, []string{logs.String(), fmt.Sprint(led.All())}, "secretpart")
		})
	}
}

func TestTokensRunDryRunChangesNothing(t *testing.T) {
	cfg := tokConfig()
	cfg.Adopt = false
	eng, led := newTokEngine(), ledgertest.New()
	var out, logs bytes.Buffer
	env := domaintest.Env(tokT0, &logs)
	env.DryRun, env.Out = true, &out
	if err := (&Tokens{Engine: eng, Ledger: led, Config: cfg}).Run(t.Context(), env); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if len(led.All()) != 0 || strings.Contains(strings.Join(eng.calls, ","), "rotate") {
		t.Errorf("dry run changed something: ledger %v, calls %v", led.Kinds(), eng.calls)
	}
	if !strings.Contains(out.String(), "would rotate worker token") {
		t.Errorf("dry-run output = %q; want it to say it would rotate", out.String())
	}
	domaintest.NoSecret(t, []string{out.String(), logs.String()}, "secretpart")
}

func TestTokensRotateManual(t *testing.T) {
	cases := []struct {
		name       string
		kinds      []string
		rotateErr  error
		publishErr error
		lostLease  bool
		wantErr    string
		wantLedger string
	}{
		{name: "worker", kinds: []string{"worker"}, wantLedger: "join-token-worker/ok"},
		{name: "all", kinds: []string{"worker", "manager"}, wantLedger: "join-token-worker/ok,join-token-manager/ok"},
		{name: "engine refuses", kinds: []string{"worker"}, rotateErr: errors.New("rpc error"), wantErr: "rotating join tokens", wantLedger: "join-token-worker/failed"},
		{name: "publish fails after rotation", kinds: []string{"manager"}, publishErr: fmt.Errorf("writing: %w", secrets.ErrUnreachable), wantErr: "were rotated and recorded", wantLedger: "join-token-manager/ok"},
		{name: "lease lost", kinds: []string{"worker"}, lostLease: true, wantErr: "lease lost", wantLedger: ""},
		{name: "unknown kind", kinds: []string{"bogus"}, wantErr: "not worker or manager", wantLedger: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tokConfig()
			cfg.Publish.VaultPath = "secret/swarm/join-tokens"
			eng, led, pub := newTokEngine(), ledgertest.New(), &tokPublisher{writeErr: tc.publishErr}
			eng.rotateErr = tc.rotateErr
			before := eng.manager
			tk := &Tokens{Engine: eng, Ledger: led, Config: cfg, Publisher: func(context.Context) (TokenPublisher, error) { return pub, nil }}
			var logs bytes.Buffer
			env := domaintest.Env(tokT0, &logs)
			env.Reason = "leaked in CI"
			if tc.lostLease {
				env.Guard = operator.CheckOnly(func(context.Context) error { return errors.New("lease lost") })
			}
			rots, err := tk.Rotate(t.Context(), tc.kinds, env)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Rotate(%v) = %v; want error containing %q", tc.kinds, err, tc.wantErr)
			}
			if got := strings.Join(led.Kinds(), ","); got != tc.wantLedger {
				t.Errorf("ledger = %s; want %s", got, tc.wantLedger)
			}
			for _, e := range led.All() {
				if e.Reason != "leaked in CI" {
					t.Errorf("entry reason = %q; want the given one", e.Reason)
				}
			}
			if tc.name == "worker" && eng.manager != before {
				t.Errorf("manager token changed on a worker rotation")
			}
			if tc.publishErr != nil {
				var pe *PublishError
				if !errors.As(err, &pe) || len(rots) != 1 {
					t.Errorf("Rotate() = %d rotations, %v; want 1 and a *PublishError", len(rots), err)
				}
			}
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			domaintest.NoSecret(t, []string{logs.String(), msg, fmt.Sprint(led.All()), fmt.Sprintf("%v %+v", rots, rots)}, "secretpart")
		})
	}
}

func TestRepublishTokens(t *testing.T) {
	eng, pub := newTokEngine(), &tokPublisher{}
	if _, err := RepublishTokens(t.Context(), eng, pub, "", operator.TaskEnv{}); err != nil || pub.writes != 0 {
		t.Fatalf("RepublishTokens(no path) = %v, %d writes; want nil, 0", err, pub.writes)
	}
	rc, err := RepublishTokens(t.Context(), eng, pub, "secret/swarm/join-tokens", operator.TaskEnv{Now: func() time.Time { return tokT0 }})
	if err != nil || pub.writes != 1 || rc.Version != 1 {
		t.Fatalf("RepublishTokens() = %+v, %v, %d writes; want version 1", rc, err, pub.writes)
	}
	if pub.rec.Manager.Reveal() != eng.manager || pub.rec.SwarmID != eng.id {
		t.Errorf("published record is not the swarm's current tokens")
	}
}

func TestTokenFindings(t *testing.T) {
	eng := newTokEngine()
	cl, _ := eng.Cluster(t.Context())
	cfg := tokConfig()
	wfp := sensitive.New(eng.worker).Fingerprint()
	entries := []swarm.Entry{
		domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-800*time.Hour), wfp),
		domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultAdopted, tokT0.Add(-time.Hour), "0000"),
	}
	got := TokenFindings(cfg, cl, entries, tokT0)
	if len(got) != 2 {
		t.Fatalf("TokenFindings() = %d findings; want 2", len(got))
	}
	w, m := got[0], got[1]
	if w.Kind != "worker" || !w.Due || w.Age.D() != 800*time.Hour || w.ChangedOutside || w.Adopted {
		t.Errorf("worker finding = %+v; want due, 800h, not changed outside", w)
	}
	if m.Kind != "manager" || m.Due || !m.Adopted || !m.ChangedOutside || m.MaxAge.D() != 168*time.Hour {
		t.Errorf("manager finding = %+v; want adopted, not due, changed outside", m)
	}
}

func TestTokenAge(t *testing.T) {
	tests := []struct {
		name string
		d    TokenDecision
		want operator.CredentialAge
	}{
		{"tracked", TokenDecision{Clock: operator.CredentialClock{Tracked: true, Age: time.Hour}, MaxAge: 2 * time.Hour},
			operator.CredentialAge{Known: true, Age: time.Hour, MaxAge: 2 * time.Hour}},
		{"adopted now", TokenDecision{Adopt: true, MaxAge: time.Hour}, operator.CredentialAge{Known: true, MaxAge: time.Hour}},
		{"changed outside: clock restarts", TokenDecision{Adopt: true, ChangedOutside: true, Clock: operator.CredentialClock{Tracked: true, Age: 5 * time.Hour}, MaxAge: time.Hour},
			operator.CredentialAge{Known: true, MaxAge: time.Hour}},
		{"never tracked, not adopted", TokenDecision{Due: true, MaxAge: time.Hour}, operator.CredentialAge{MaxAge: time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tokenAge(tc.d); got != tc.want {
				t.Errorf("tokenAge(%+v) = %+v; want %+v", tc.d, got, tc.want)
			}
		})
	}
}
