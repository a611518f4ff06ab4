package tokens

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/swarm"
)

// winNodes is a fake node list.
type winNodes struct {
	nodes []swarm.Node
	err   error
	reads int
}

func (n *winNodes) Nodes(context.Context) ([]swarm.Node, error) {
	n.reads++
	return n.nodes, n.err
}

func winTokens(eng *tokEngine, led *ledgertest.Ledger, nodes *winNodes) *Tokens {
	cfg := config.DefaultConfig().Tokens
	cfg.Worker.MaxAge, cfg.Manager.MaxAge = config.Duration(8760*time.Hour), config.Duration(8760*time.Hour)
	t := &Tokens{Engine: eng, Ledger: led, Config: cfg}
	if nodes != nil {
		t.Nodes = nodes
	}
	return t
}

func winEnv(now time.Time) operator.TaskEnv {
	return operator.TaskEnv{Actor: "tester", Now: func() time.Time { return now }}
}

// TestJoinWindowClosesByTimeOrJoins: a window's token is rotated by the pass when its time is up or after
// its node limit joined, never before; the rotation names the window and the window is closed in the same
// write.
func TestJoinWindowClosesByTimeOrJoins(t *testing.T) {
	joined := func(n int, role string, at time.Time) []swarm.Node {
		var out []swarm.Node
		for i := 0; i < n; i++ {
			out = append(out, swarm.Node{ID: "n" + string(rune('a'+i)), Role: role, CreatedAt: at})
		}
		return out
	}
	tests := []struct {
		name       string
		kind       string
		ttl        time.Duration
		limit      int
		nodes      []swarm.Node
		passAfter  time.Duration
		wantRotate bool
		wantBy     string
	}{
		{"open, before its time", "worker", time.Hour, 0, nil, 30 * time.Minute, false, ""},
		{"time is up", "worker", time.Hour, 0, nil, time.Hour, true, "ttl"},
		{"manager window, time is up", "manager", time.Minute, 0, nil, 2 * time.Minute, true, "ttl"},
		{"one of two joined", "worker", time.Hour, 2, joined(1, "worker", tokT0.Add(time.Minute)), 5 * time.Minute, false, ""},
		{"two of two joined", "worker", time.Hour, 2, joined(2, "worker", tokT0.Add(time.Minute)), 5 * time.Minute, true, "nodes"},
		{"joins of the other role do not count", "worker", time.Hour, 1, joined(3, "manager", tokT0.Add(time.Minute)), 5 * time.Minute, false, ""},
		{"nodes from before the window do not count", "worker", time.Hour, 1, joined(3, "worker", tokT0.Add(-time.Minute)), 5 * time.Minute, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eng, led := newTokEngine(), ledgertest.New()
			tk := winTokens(eng, led, &winNodes{nodes: tc.nodes})
			ow, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: tc.kind, TTL: tc.ttl, Nodes: tc.limit}, winEnv(tokT0))
			if err != nil {
				t.Fatalf("OpenWindow = %v", err)
			}
			if len(eng.calls) != 1 || eng.calls[0] != "cluster" {
				t.Fatalf("opening the window called %v; want only a read of the swarm", eng.calls)
			}
			// The first pass adopts the clocks; the window's decision is the same with or without them.
			if err := tk.Run(t.Context(), winEnv(tokT0.Add(tc.passAfter))); err != nil {
				t.Fatalf("Run = %v", err)
			}
			entries, _ := led.Entries(t.Context())
			rotated := false
			for _, c := range eng.calls {
				rotated = rotated || strings.HasPrefix(c, "rotate")
			}
			if rotated != tc.wantRotate {
				t.Fatalf("Run rotated = %v; want %v (calls %v)", rotated, tc.wantRotate, eng.calls)
			}
			open := Windows(entries, false)
			if tc.wantRotate == (len(open) == 1) {
				t.Fatalf("open windows after the pass = %v; want closed = %v", open, tc.wantRotate)
			}
			if !tc.wantRotate {
				return
			}
			rot, ok := swarm.Latest(entries, TokenLedgerKind(tc.kind), swarm.ResultOK)
			if !ok || rot.Details[DetailWindow] != ow.Window.ID || !strings.Contains(rot.Reason, "join window "+ow.Window.ID) {
				t.Errorf("rotation entry = %+v; want it to name window %s", rot, ow.Window.ID)
			}
			cl, _ := swarm.Latest(entries, swarm.KindJoinWindow)
			if cl.Details[DetailWindowAction] != "close" || cl.Details[DetailClosedBy] != tc.wantBy || cl.Seq != rot.Seq+1 && cl.Seq+1 != rot.Seq {
				t.Errorf("close entry = %+v; want closed_by %s next to the rotation", cl, tc.wantBy)
			}
			if led.Appends() != 2 { // the window's open, then one write for the pass
				t.Errorf("ledger appends = %d; want 2", led.Appends())
			}
			// The next pass has nothing to do: no second rotation for one window.
			eng.calls = nil
			if err := tk.Run(t.Context(), winEnv(tokT0.Add(tc.passAfter+time.Minute))); err != nil {
				t.Fatalf("second Run = %v", err)
			}
			for _, c := range eng.calls {
				if strings.HasPrefix(c, "rotate") {
					t.Errorf("second pass rotated again: %v", eng.calls)
				}
			}
		})
	}
}

// TestJoinWindowRefusals: one window per kind; a failed node read or rotation decides nothing and keeps
// the window open; a token rotated since the window opened closes it without another rotation.
func TestJoinWindowRefusals(t *testing.T) {
	t.Run("second window of a kind", func(t *testing.T) {
		eng, led := newTokEngine(), ledgertest.New()
		tk := winTokens(eng, led, nil)
		if _, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: "worker", TTL: time.Hour}, winEnv(tokT0)); err != nil {
			t.Fatal(err)
		}
		_, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: "worker", TTL: time.Hour}, winEnv(tokT0))
		if !errors.Is(err, ErrWindowOpen) {
			t.Errorf("second OpenWindow = %v; want ErrWindowOpen", err)
		}
		if _, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: "manager", TTL: time.Hour}, winEnv(tokT0)); err != nil {
			t.Errorf("a manager window next to a worker one = %v; want it open", err)
		}
	})
	t.Run("bad terms", func(t *testing.T) {
		tk := winTokens(newTokEngine(), ledgertest.New(), nil)
		for _, o := range []OpenWindowOptions{{Kind: "worker"}, {Kind: "worker", TTL: time.Hour, Nodes: -1}, {Kind: "all", TTL: time.Hour}} {
			if _, err := tk.OpenWindow(t.Context(), o, winEnv(tokT0)); err == nil {
				t.Errorf("OpenWindow(%+v) = nil; want an error", o)
			}
		}
	})
	t.Run("unreadable nodes", func(t *testing.T) {
		eng, led := newTokEngine(), ledgertest.New()
		tk := winTokens(eng, led, &winNodes{err: errors.New("engine down")})
		if _, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: "worker", TTL: time.Hour, Nodes: 1}, winEnv(tokT0)); err != nil {
			t.Fatal(err)
		}
		if err := tk.Run(t.Context(), winEnv(tokT0.Add(2*time.Hour))); err == nil || !strings.Contains(err.Error(), "engine down") {
			t.Errorf("Run = %v; want the node read's error", err)
		}
		entries, _ := led.Entries(t.Context())
		if len(Windows(entries, false)) != 1 {
			t.Errorf("a failed read closed the window")
		}
	})
	t.Run("failed rotation", func(t *testing.T) {
		eng, led := newTokEngine(), ledgertest.New()
		tk := winTokens(eng, led, nil)
		if _, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: "worker", TTL: time.Minute}, winEnv(tokT0)); err != nil {
			t.Fatal(err)
		}
		eng.rotateErr = errors.New("raft lost quorum")
		if err := tk.Run(t.Context(), winEnv(tokT0.Add(time.Hour))); err == nil {
			t.Fatal("Run = nil; want the rotation's error")
		}
		entries, _ := led.Entries(t.Context())
		if len(Windows(entries, false)) != 1 {
			t.Errorf("the window was closed although its token was not rotated")
		}
		if e, ok := swarm.Latest(entries, swarm.KindJoinTokenWorker); !ok || e.Result != swarm.ResultFailed {
			t.Errorf("no failed rotation recorded: %v", led.Kinds())
		}
	})
	t.Run("rotated meanwhile", func(t *testing.T) {
		eng, led := newTokEngine(), ledgertest.New()
		tk := winTokens(eng, led, nil)
		if _, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: "worker", TTL: time.Hour}, winEnv(tokT0)); err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Rotate(t.Context(), []string{"worker"}, winEnv(tokT0.Add(time.Minute))); err != nil {
			t.Fatal(err)
		}
		eng.calls = nil
		if err := tk.Run(t.Context(), winEnv(tokT0.Add(2*time.Minute))); err != nil {
			t.Fatal(err)
		}
		for _, c := range eng.calls {
			if strings.HasPrefix(c, "rotate") {
				t.Errorf("the pass rotated again: %v", eng.calls)
			}
		}
		entries, _ := led.Entries(t.Context())
		cl, _ := swarm.Latest(entries, swarm.KindJoinWindow)
		if len(Windows(entries, false)) != 0 || cl.Details[DetailClosedBy] != "rotated" {
			t.Errorf("window not closed as rotated: %+v", cl)
		}
	})
	t.Run("close early", func(t *testing.T) {
		eng, led := newTokEngine(), ledgertest.New()
		tk := winTokens(eng, led, nil)
		ow, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: "manager", TTL: time.Hour}, winEnv(tokT0))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := tk.CloseWindow(t.Context(), "jw-nonesuch", winEnv(tokT0)); !errors.Is(err, ErrNoWindow) {
			t.Errorf("CloseWindow(unknown) = %v; want ErrNoWindow", err)
		}
		env := winEnv(tokT0.Add(time.Minute))
		env.Reason = "provisioning done"
		d, rots, err := tk.CloseWindow(t.Context(), ow.Window.ID, env)
		if err != nil || len(rots) != 1 || rots[0].Kind != "manager" || d.By != "manual" {
			t.Fatalf("CloseWindow = %+v, %v, %v; want the manager token rotated, closed by manual", d, rots, err)
		}
		entries, _ := led.Entries(t.Context())
		if len(Windows(entries, false)) != 0 {
			t.Errorf("window still open after close")
		}
		if got := strings.Join(led.Kinds(), ","); got != "join-window/ok,join-token-manager/ok,join-window/ok" {
			t.Errorf("ledger = %s", got)
		}
	})
}

// TestRequireWindows: with tokens.require_windows a token swarmguard did not mint is due unless a window of
// its kind is open; one it minted is not.
func TestRequireWindows(t *testing.T) {
	at := tokT0.Add(time.Hour)
	adopted := swarm.Entry{Kind: swarm.KindJoinTokenWorker, At: tokT0, Result: swarm.ResultAdopted,
		Details: map[string]string{operator.DetailFingerprint: "x", operator.DetailSecretFingerprint: tokenSecretFingerprint(newTokCluster().WorkerToken)}}
	minted := adopted
	minted.Result = swarm.ResultOK
	open := swarm.Entry{Kind: swarm.KindJoinWindow, At: tokT0, Result: swarm.ResultOK, Details: map[string]string{
		DetailWindow: "jw-1", DetailWindowToken: "worker", DetailWindowAction: "open", DetailClosesAt: tokT0.Add(2 * time.Hour).Format(time.RFC3339Nano)}}
	tests := []struct {
		name    string
		require bool
		entries []swarm.Entry
		wantDue bool
	}{
		{"off: adopted token kept", false, []swarm.Entry{adopted}, false},
		{"on: adopted token due", true, []swarm.Entry{adopted}, true},
		{"on: minted token kept", true, []swarm.Entry{minted}, false},
		{"on: adopted token with an open window kept", true, []swarm.Entry{adopted, open}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.DefaultConfig().Tokens
			cfg.RequireWindows = tc.require
			d := Decide(Observation{Cluster: newTokCluster(), Entries: tc.entries}, cfg, at)[0]
			if d.Due != tc.wantDue {
				t.Errorf("Decide(worker).Due = %v (%s); want %v", d.Due, d.Why, tc.wantDue)
			}
		})
	}
}

func newTokCluster() swarm.Cluster {
	c, _ := newTokEngine().Cluster(context.Background())
	return c
}

// TestRunWindows: the join-windows loop reads only the ledger while no window is open, and closes a due
// window with its rotation like the tokens pass.
func TestRunWindows(t *testing.T) {
	eng, led := newTokEngine(), ledgertest.New()
	tk := winTokens(eng, led, nil)
	if err := tk.RunWindows(t.Context(), winEnv(tokT0)); err != nil || len(eng.calls) != 0 || led.Appends() != 0 {
		t.Fatalf("RunWindows with no window = %v, calls %v, appends %d; want nothing done", err, eng.calls, led.Appends())
	}
	ow, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: "worker", TTL: time.Minute}, winEnv(tokT0))
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.RunWindows(t.Context(), winEnv(tokT0.Add(30*time.Second))); err != nil || led.Appends() != 1 {
		t.Fatalf("RunWindows inside the window = %v, appends %d; want nothing written", err, led.Appends())
	}
	dry := winEnv(tokT0.Add(2 * time.Minute))
	dry.DryRun = true
	if err := tk.RunWindows(t.Context(), dry); err != nil || led.Appends() != 1 {
		t.Fatalf("dry RunWindows = %v, appends %d; want nothing written", err, led.Appends())
	}
	if err := tk.RunWindows(t.Context(), winEnv(tokT0.Add(2*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(led.Kinds(), ","); got != "join-window/ok,join-token-worker/ok,join-window/ok" {
		t.Errorf("ledger = %s", got)
	}
	entries, _ := led.Entries(t.Context())
	if rot, _ := swarm.Latest(entries, swarm.KindJoinTokenWorker); rot.Details[DetailWindow] != ow.Window.ID {
		t.Errorf("rotation %+v does not name window %s", rot, ow.Window.ID)
	}
}

// TestJoinWindowClosedRotatedRepublishes: a window whose token was rotated since it opened, without a
// record (a holder stopped at crash point join-window.after-rotate, or a rotation by hand), is closed by
// the next pass without another rotation; the rotation is adopted and the published tokens are brought up
// to date in that same pass, not left stale until the next scheduled one.
func TestJoinWindowClosedRotatedRepublishes(t *testing.T) {
	eng, led := newTokEngine(), ledgertest.New()
	tk := winTokens(eng, led, nil)
	tk.Config.Adopt = true
	tk.Config.Publish.VaultPath = "secret/swarm/join-tokens"
	pub := &tokPublisher{}
	tk.Publisher = func(context.Context) (TokenPublisher, error) { return pub, nil }
	if err := tk.Run(t.Context(), winEnv(tokT0)); err != nil { // adopts both tokens, publishes them
		t.Fatal(err)
	}
	if _, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: swarm.TokenWorker, TTL: time.Hour}, winEnv(tokT0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RotateJoinTokens(t.Context(), true, false); err != nil { // rotated, never recorded
		t.Fatal(err)
	}
	eng.calls = nil
	if err := tk.Run(t.Context(), winEnv(tokT0.Add(2*time.Minute))); err != nil {
		t.Fatal(err)
	}
	for _, c := range eng.calls {
		if strings.HasPrefix(c, "rotate") {
			t.Errorf("the pass rotated again: %v", eng.calls)
		}
	}
	entries, _ := led.Entries(t.Context())
	cl, _ := swarm.Latest(entries, swarm.KindJoinWindow)
	ad, adopted := swarm.Latest(entries, swarm.KindJoinTokenWorker, swarm.ResultAdopted)
	if len(Windows(entries, false)) != 0 || cl.Details[DetailClosedBy] != "rotated" || !adopted || !strings.Contains(ad.Reason, "changed outside the ledger") {
		t.Errorf("after the pass: open %v, close %+v, adopted %v (%q); want closed by rotated and the rotation adopted", Windows(entries, false), cl.Details, adopted, ad.Reason)
	}
	if pub.rec == nil || pub.rec.Worker.Reveal() != eng.worker || pub.writes != 2 {
		t.Errorf("published worker token is current = %v after %d writes; want the rotated one, 2 writes", pub.rec != nil && pub.rec.Worker.Reveal() == eng.worker, pub.writes)
	}
}
