package autolock

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

// alEngine is a fake swarm for the autolock pass.
type alEngine struct {
	id       string
	autolock bool
	key      string
	n        int
	nodes    []swarm.Node
	services []swarm.ServiceEndpoint
	calls    []string
	// lostRead: a rotation is accepted, but reading the new key back fails (the call's answer was lost).
	lostRead bool
}

func newALEngine(autolock bool) *alEngine {
	e := &alEngine{id: "swarm1", autolock: autolock, nodes: []swarm.Node{
		{ID: "m1", Hostname: "mgr-1", Role: "manager", Reachability: "reachable", Addr: "10.0.0.11"},
		{ID: "m2", Hostname: "mgr-2", Role: "manager", Reachability: "reachable", Addr: "10.0.0.12"},
		{ID: "w1", Hostname: "wrk-1", Role: "worker", Addr: "10.0.0.21"},
	}}
	if autolock {
		e.key = "SWMKEY-1-key0secretpart"
	}
	return e
}

func (e *alEngine) Cluster(context.Context) (swarm.Cluster, error) {
	return swarm.Cluster{ID: e.id, AutoLock: e.autolock}, nil
}
func (e *alEngine) Nodes(context.Context) ([]swarm.Node, error) { return e.nodes, nil }
func (e *alEngine) UnlockKey(context.Context) (sensitive.Value, error) {
	return sensitive.New(e.key), nil
}
func (e *alEngine) SetAutolock(_ context.Context, on bool) (bool, error) {
	e.calls = append(e.calls, fmt.Sprintf("autolock=%v", on))
	changed := e.autolock != on
	e.autolock = on
	if on && e.key == "" {
		e.n++
		e.key = fmt.Sprintf("SWMKEY-1-key%dsecretpart", e.n)
	}
	return changed, nil
}
func (e *alEngine) RotateUnlockKey(context.Context) (sensitive.Value, sensitive.Value, error) {
	e.calls = append(e.calls, "rotate")
	if !e.autolock {
		return sensitive.Value{}, sensitive.Value{}, swarm.ErrAutolockOff
	}
	old := e.key
	e.n++
	e.key = fmt.Sprintf("SWMKEY-1-key%dsecretpart", e.n)
	if e.lostRead {
		return sensitive.New(old), sensitive.Value{}, errors.New("reading the new unlock key: context deadline exceeded (the rotation itself was accepted)")
	}
	return sensitive.New(old), sensitive.New(e.key), nil
}
func (e *alEngine) ServiceEndpoints(context.Context) ([]swarm.ServiceEndpoint, error) {
	return e.services, nil
}
func (e *alEngine) rotated() bool {
	for _, c := range e.calls {
		if c == "rotate" {
			return true
		}
	}
	return false
}

// alEscrow is a fake Vault escrow: one record per path, versions counted.
type alEscrow struct {
	recs     map[string]secrets.EscrowRecord
	storeErr error
	loadErr  error
	stores   int
}

func newALEscrow() *alEscrow { return &alEscrow{recs: map[string]secrets.EscrowRecord{}} }

func (f *alEscrow) StoreKey(_ context.Context, path, swarmID string, key sensitive.Value, at time.Time) (secrets.Receipt, error) {
	if f.storeErr != nil {
		return secrets.Receipt{}, f.storeErr
	}
	f.stores++
	v := f.recs[path].Version + 1
	f.recs[path] = secrets.EscrowRecord{Key: key, SwarmID: swarmID, Time: at, Fingerprint: key.Fingerprint(), Version: v}
	return secrets.Receipt{Path: path, Version: v}, nil
}

func (f *alEscrow) LoadKey(_ context.Context, path string) (secrets.EscrowRecord, error) {
	if f.loadErr != nil {
		return secrets.EscrowRecord{}, f.loadErr
	}
	r, ok := f.recs[path]
	if !ok {
		return secrets.EscrowRecord{}, fmt.Errorf("reading %q: %w", path, secrets.ErrNotFound)
	}
	return r, nil
}

const alPath = "secret/swarmguard/swarm1/unlock-key"

func alConfig(mode string) config.AutolockConfig {
	c := config.DefaultConfig().Autolock
	c.Mode = mode
	c.Rotate.MaxAge = config.Duration(2160 * time.Hour)
	return c
}

func newAutolock(eng *alEngine, led *ledgertest.Ledger, esc *alEscrow, mode string) *Autolock {
	a := &Autolock{Engine: eng, Ledger: led, Config: alConfig(mode), VaultAddr: "https://vault.internal:8200"}
	if esc != nil {
		a.Escrow = func(context.Context) (KeyEscrow, error) { return esc, nil }
	}
	return a
}

func TestDecideUnlockKey(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		name      string
		entries   []swarm.Entry
		maxAge    time.Duration
		wantDue   bool
		wantAdopt bool
	}{
		{name: "never seen: adopt", maxAge: day, wantAdopt: true},
		{name: "fresh", entries: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-time.Hour), "f")}, maxAge: day},
		{name: "old", entries: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-2*day), "f")}, maxAge: day, wantDue: true},
		{name: "adopted and old", entries: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultAdopted, alT0.Add(-2*day), "f")}, maxAge: day, wantDue: true},
		{name: "no max age", entries: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-900*day), "f")}, maxAge: 0},
		{name: "escrow entries do not reset the clock", entries: []swarm.Entry{
			domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-2*day), "f"),
			domaintest.Entry(swarm.KindUnlockKeyEscrow, swarm.ResultOK, alT0, "f")}, maxAge: day, wantDue: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideUnlockKey(tc.entries, tc.maxAge, alT0)
			if d.Due != tc.wantDue || d.Adopt != tc.wantAdopt {
				t.Errorf("DecideUnlockKey() = due %v adopt %v (%s); want due %v adopt %v", d.Due, d.Adopt, d.Why, tc.wantDue, tc.wantAdopt)
			}
		})
	}
}

func TestAutolockRotateKey(t *testing.T) {
	cases := []struct {
		name        string
		autolock    bool
		downManager bool
		force       bool
		noVault     bool
		setup       func(*alEscrow)
		wantErr     string
		wantErrIs   error
		wantRotated bool
		wantLedger  string
		wantEscrow  bool
	}{
		{name: "rotates and escrows", autolock: true, wantRotated: true, wantLedger: "unlock-key/ok,unlock-key-escrow/ok", wantEscrow: true},
		{name: "autolock off is refused", autolock: false, wantErrIs: swarm.ErrAutolockOff, wantLedger: ""},
		{name: "unreachable manager is refused", autolock: true, downManager: true, wantErrIs: ErrManagersUnreachable, wantLedger: ""},
		{name: "unreachable manager with force", autolock: true, downManager: true, force: true, wantRotated: true, wantLedger: "unlock-key/ok,unlock-key-escrow/ok", wantEscrow: true},
		{name: "another swarm's record: refused before rotating", autolock: true, setup: func(e *alEscrow) {
			e.recs[alPath] = secrets.EscrowRecord{Key: sensitive.New("SWMKEY-1-othersecretpart"), SwarmID: "swarm2", Version: 4}
		}, wantErrIs: secrets.ErrOtherSwarm, wantLedger: ""},
		{name: "no vault configured: refused before rotating", autolock: true, noVault: true, wantErrIs: ErrNoEscrow, wantLedger: ""},
		{name: "vault down: rotated, escrow fails", autolock: true, setup: func(e *alEscrow) {
			e.loadErr = fmt.Errorf("reading: %w: connection refused", secrets.ErrUnreachable)
			e.storeErr = fmt.Errorf("writing: %w: connection refused", secrets.ErrUnreachable)
		}, wantErr: "is safe in the swarm", wantErrIs: secrets.ErrUnreachable, wantRotated: true, wantLedger: "unlock-key/ok,unlock-key-escrow/failed"},
		{name: "permission denied on preflight: refused", autolock: true, setup: func(e *alEscrow) {
			e.loadErr = fmt.Errorf("reading: %w", secrets.ErrPermissionDenied)
		}, wantErrIs: secrets.ErrPermissionDenied, wantLedger: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eng, led, esc := newALEngine(tc.autolock), ledgertest.New(), newALEscrow()
			if tc.downManager {
				eng.nodes[1].Reachability = "unreachable"
			}
			if tc.setup != nil {
				tc.setup(esc)
			}
			a := newAutolock(eng, led, esc, config.ModeEnforce)
			if tc.noVault {
				a.Escrow = nil
			}
			var logs bytes.Buffer
			env := domaintest.Env(alT0, &logs)
			env.Reason = "shown in a screen share"
			res, err := a.RotateKey(t.Context(), RotateKeyOptions{Force: tc.force}, env)
			if tc.wantErrIs != nil && !errors.Is(err, tc.wantErrIs) || tc.wantErrIs == nil && tc.wantErr == "" && err != nil {
				t.Fatalf("RotateKey() = %v; want %v", err, tc.wantErrIs)
			}
			if tc.wantErr != "" {
				var ee *EscrowError
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "swarmguard escrow unlock-key") || !errors.As(err, &ee) {
					t.Errorf("RotateKey() = %v; want an *EscrowError saying %q and how to escrow again", err, tc.wantErr)
				}
			}
			if res.Rotated != tc.wantRotated || eng.rotated() != tc.wantRotated {
				t.Errorf("rotated = %v (engine %v); want %v", res.Rotated, eng.rotated(), tc.wantRotated)
			}
			if got := strings.Join(led.Kinds(), ","); got != tc.wantLedger {
				t.Errorf("ledger = %s; want %s", got, tc.wantLedger)
			}
			if tc.wantEscrow {
				rec := esc.recs[alPath]
				if rec.Key.Reveal() != eng.key || res.Escrow == nil || !res.Escrow.Verified || res.Escrow.Fingerprint != sensitive.New(eng.key).Fingerprint() {
					t.Errorf("escrow = %+v; want the new key, verified", res.Escrow)
				}
				for _, e := range led.All() {
					if e.Reason != "shown in a screen share" || e.Actor != "node-a" {
						t.Errorf("entry %s: actor %q reason %q", e.Kind, e.Actor, e.Reason)
					}
				}
				if led.All()[0].Details[operator.DetailOldFingerprint] != sensitive.New("SWMKEY-1-key0secretpart").Fingerprint() {
					t.Errorf("unlock-key entry lacks the old fingerprint: %v", led.All()[0].Details)
				}
			}
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			domaintest.NoSecret(t, []string{logs.String(), msg, fmt.Sprint(led.All()), fmt.Sprintf("%+v", res)}, "secretpart")
		})
	}
}

func TestAutolockRun(t *testing.T) {
	day := 24 * time.Hour
	key0fp := sensitive.New("SWMKEY-1-key0secretpart").Fingerprint()
	escrowed := func(e *alEscrow) {
		e.recs[alPath] = secrets.EscrowRecord{Key: sensitive.New("SWMKEY-1-key0secretpart"), SwarmID: "swarm1", Fingerprint: key0fp, Version: 1}
	}
	otherFP := sensitive.New("SWMKEY-1-beforesecretpart").Fingerprint()
	escrowedOther := func(e *alEscrow) {
		e.recs[alPath] = secrets.EscrowRecord{Key: sensitive.New("SWMKEY-1-beforesecretpart"), SwarmID: "swarm1", Fingerprint: otherFP, Version: 1}
	}
	cases := []struct {
		name       string
		mode       string
		autolock   bool
		ledger     []swarm.Entry
		setup      func(*alEscrow)
		wantCalls  string
		wantLedger string
		wantStores int
		wantErr    bool
	}{
		{name: "off does nothing", mode: config.ModeOff, autolock: false, wantCalls: "", wantLedger: ""},
		{name: "audit, autolock off: report only", mode: config.ModeAudit, autolock: false, wantCalls: "", wantLedger: ""},
		{name: "enforce, autolock off: enable and escrow", mode: config.ModeEnforce, autolock: false, wantCalls: "autolock=true",
			wantLedger: "unlock-key/ok,unlock-key-escrow/ok", wantStores: 1},
		{name: "enforce, autolock off, vault down: not enabled", mode: config.ModeEnforce, autolock: false,
			setup: func(e *alEscrow) { e.loadErr = secrets.ErrUnreachable }, wantCalls: "", wantLedger: "", wantErr: true},
		{name: "enforce, first sight: adopt and escrow", mode: config.ModeEnforce, autolock: true, wantCalls: "",
			wantLedger: "unlock-key/adopted,unlock-key-escrow/ok", wantStores: 1},
		{name: "audit, first sight: adopt only", mode: config.ModeAudit, autolock: true, wantCalls: "", wantLedger: "unlock-key/adopted"},
		{name: "enforce, due: rotate and escrow", mode: config.ModeEnforce, autolock: true, setup: escrowed,
			ledger: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-100*day), key0fp)}, wantCalls: "rotate",
			wantLedger: "unlock-key/ok,unlock-key/ok,unlock-key-escrow/ok", wantStores: 1},
		{name: "audit, due: nothing", mode: config.ModeAudit, autolock: true, setup: escrowed,
			ledger: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-100*day), key0fp)}, wantCalls: "", wantLedger: "unlock-key/ok"},
		{name: "enforce, fresh and escrowed: nothing", mode: config.ModeEnforce, autolock: true, setup: escrowed,
			ledger: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-day), key0fp)}, wantCalls: "", wantLedger: "unlock-key/ok"},
		{name: "enforce, vault holds an old key: escrow", mode: config.ModeEnforce, autolock: true,
			setup: func(e *alEscrow) {
				e.recs[alPath] = secrets.EscrowRecord{Key: sensitive.New("SWMKEY-1-oldsecretpart"), SwarmID: "swarm1", Fingerprint: sensitive.New("SWMKEY-1-oldsecretpart").Fingerprint(), Version: 1}
			},
			ledger: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-day), key0fp)}, wantCalls: "",
			wantLedger: "unlock-key/ok,unlock-key-escrow/ok", wantStores: 1},
		{name: "enforce, due, key changed outside the ledger (a holder killed after rotating): adopted and escrowed, not rotated again",
			mode: config.ModeEnforce, autolock: true, setup: escrowedOther,
			ledger: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-100*day), otherFP)}, wantCalls: "",
			wantLedger: "unlock-key/ok,unlock-key/adopted,unlock-key-escrow/ok", wantStores: 1},
		{name: "enforce, due, key changed outside the ledger and already escrowed (killed after the escrow): adopted only",
			mode: config.ModeEnforce, autolock: true, setup: escrowed,
			ledger: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-100*day), otherFP)}, wantCalls: "",
			wantLedger: "unlock-key/ok,unlock-key/adopted"},
		{name: "audit, key changed outside the ledger: adopted, not escrowed", mode: config.ModeAudit, autolock: true,
			ledger: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-100*day), otherFP)}, wantCalls: "",
			wantLedger: "unlock-key/ok,unlock-key/adopted"},
		{name: "enforce, vault unreadable: error, nothing written", mode: config.ModeEnforce, autolock: true,
			setup:  func(e *alEscrow) { e.loadErr = fmt.Errorf("x: %w", secrets.ErrPermissionDenied) },
			ledger: []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-day), key0fp)}, wantCalls: "", wantLedger: "unlock-key/ok", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eng, led, esc := newALEngine(tc.autolock), ledgertest.New(tc.ledger...), newALEscrow()
			if tc.setup != nil {
				tc.setup(esc)
			}
			a := newAutolock(eng, led, esc, tc.mode)
			var logs bytes.Buffer
			err := a.Task().Run(t.Context(), domaintest.Env(alT0, &logs))
			if (err != nil) != tc.wantErr {
				t.Fatalf("Run() = %v; want error %v", err, tc.wantErr)
			}
			if got := strings.Join(eng.calls, ","); got != tc.wantCalls {
				t.Errorf("engine calls = %q; want %q", got, tc.wantCalls)
			}
			if got := strings.Join(led.Kinds(), ","); got != tc.wantLedger {
				t.Errorf("ledger = %s; want %s", got, tc.wantLedger)
			}
			if esc.stores != tc.wantStores {
				t.Errorf("escrow writes = %d; want %d", esc.stores, tc.wantStores)
			}
			if tc.wantStores > 0 && esc.recs[alPath].Key.Reveal() != eng.key {
				t.Errorf("vault does not hold the swarm's current key")
			}
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			domaintest.NoSecret(t, []string{logs.String(), msg, fmt.Sprint(led.All())}, "secretpart")
		})
	}
}

// TestAutolockLostReadNeverRotatesTwice: a rotation whose new key could not be read back is recorded as
// failed; the next pass finds a key the ledger does not know, adopts and escrows it, and does not rotate
// again (which would leave the key in between escrowed nowhere).
func TestAutolockLostReadNeverRotatesTwice(t *testing.T) {
	day := 24 * time.Hour
	eng, esc := newALEngine(true), newALEscrow()
	key0fp := sensitive.New(eng.key).Fingerprint()
	led := ledgertest.New(domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-100*day), key0fp))
	esc.recs[alPath] = secrets.EscrowRecord{Key: sensitive.New(eng.key), SwarmID: "swarm1", Fingerprint: key0fp, Version: 1}
	a := newAutolock(eng, led, esc, config.ModeEnforce)
	eng.lostRead = true
	var logs bytes.Buffer
	if err := a.Task().Run(t.Context(), domaintest.Env(alT0, &logs)); err == nil {
		t.Fatal("Run() with the new key unread = nil; want the rotation's error")
	}
	eng.lostRead = false
	for i := range 3 {
		if err := a.Task().Run(t.Context(), domaintest.Env(alT0.Add(time.Duration(i+1)*time.Minute), &logs)); err != nil {
			t.Fatalf("pass %d after the lost read: %v", i+1, err)
		}
	}
	if got := strings.Join(eng.calls, ","); got != "rotate" {
		t.Errorf("engine calls over four passes = %q; want one rotation", got)
	}
	if got, want := strings.Join(led.Kinds(), ","), "unlock-key/ok,unlock-key/failed,unlock-key/adopted,unlock-key-escrow/ok"; got != want {
		t.Errorf("ledger = %s; want %s", got, want)
	}
	if esc.recs[alPath].Key.Reveal() != eng.key || esc.stores != 1 {
		t.Errorf("escrow holds the current key = %v after %d writes; want it, after 1", esc.recs[alPath].Key.Reveal() == eng.key, esc.stores)
	}
	domaintest.NoSecret(t, []string{logs.String(), fmt.Sprint(led.All())}, "secretpart")
}

func TestDecideCurrentKey(t *testing.T) {
	day := 24 * time.Hour
	old := []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-2*day), "f1")}
	for _, tc := range []struct {
		name, fp                 string
		wantDue, wantAdopt, outs bool
	}{
		{name: "same key, old: due", fp: "f1", wantDue: true},
		{name: "key not read: the ledger decides", fp: "", wantDue: true},
		{name: "another key, old: adopted, not due", fp: "f2", wantAdopt: true, outs: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideCurrentKey(old, day, tc.fp, alT0)
			if d.Due != tc.wantDue || d.Adopt != tc.wantAdopt || d.ChangedOutside != tc.outs {
				t.Errorf("DecideCurrentKey(%q) = due %v adopt %v outside %v; want %v %v %v", tc.fp, d.Due, d.Adopt, d.ChangedOutside, tc.wantDue, tc.wantAdopt, tc.outs)
			}
			if tc.outs && (d.Clock.Age != 0 || !d.Clock.Since.Equal(alT0)) {
				t.Errorf("adopted key's clock = %+v; want it started now", d.Clock)
			}
		})
	}
}

func TestAutolockRunDryRun(t *testing.T) {
	eng, led, esc := newALEngine(false), ledgertest.New(), newALEscrow()
	var out, logs bytes.Buffer
	env := domaintest.Env(alT0, &logs)
	env.DryRun, env.Out = true, &out
	if err := newAutolock(eng, led, esc, config.ModeEnforce).Run(t.Context(), env); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if len(eng.calls) != 0 || len(led.All()) != 0 || esc.stores != 0 {
		t.Errorf("dry run changed something: calls %v ledger %v stores %d", eng.calls, led.Kinds(), esc.stores)
	}
	if !strings.Contains(out.String(), "would turn autolock on") {
		t.Errorf("dry-run output = %q", out.String())
	}
}

func TestEscrowCurrent(t *testing.T) {
	eng, led, esc := newALEngine(true), ledgertest.New(), newALEscrow()
	a := newAutolock(eng, led, esc, config.ModeAudit)
	var logs bytes.Buffer
	res, err := a.EscrowCurrent(t.Context(), domaintest.Env(alT0, &logs))
	if err != nil || res.Escrow == nil || !res.Escrow.Verified || esc.recs[alPath].Key.Reveal() != eng.key {
		t.Fatalf("EscrowCurrent() = %+v, %v; want the current key escrowed and verified", res.Escrow, err)
	}
	if got := strings.Join(led.Kinds(), ","); got != "unlock-key-escrow/ok" {
		t.Errorf("ledger = %s; want unlock-key-escrow/ok", got)
	}
	off := newAutolock(newALEngine(false), ledgertest.New(), esc, config.ModeAudit)
	if _, err := off.EscrowCurrent(t.Context(), domaintest.Env(alT0, &logs)); !errors.Is(err, swarm.ErrAutolockOff) {
		t.Errorf("EscrowCurrent(autolock off) = %v; want ErrAutolockOff", err)
	}
	domaintest.NoSecret(t, []string{logs.String(), fmt.Sprint(led.All())}, "secretpart")
}

func TestAutolockFindings(t *testing.T) {
	key := sensitive.New("SWMKEY-1-key0secretpart")
	cfg := alConfig(config.ModeEnforce)
	entries := []swarm.Entry{
		domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-3000*time.Hour), key.Fingerprint()),
		domaintest.Entry(swarm.KindUnlockKeyEscrow, swarm.ResultOK, alT0.Add(-2999*time.Hour), key.Fingerprint()),
	}
	cases := []struct {
		name        string
		autolock    bool
		esc         EscrowObservation
		wantMatches bool
		wantDue     bool
	}{
		{name: "escrow matches", autolock: true, esc: EscrowObservation{Checked: true, Found: true, Fingerprint: key.Fingerprint(), SwarmID: "swarm1"}, wantMatches: true, wantDue: true},
		{name: "escrow holds another key", autolock: true, esc: EscrowObservation{Checked: true, Found: true, Fingerprint: "00", SwarmID: "swarm1"}, wantDue: true},
		{name: "escrow of another swarm", autolock: true, esc: EscrowObservation{Checked: true, Found: true, Fingerprint: key.Fingerprint(), SwarmID: "swarm2"}, wantDue: true},
		{name: "escrow empty", autolock: true, esc: EscrowObservation{Checked: true}, wantDue: true},
		{name: "autolock off", autolock: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fp := ""
			if tc.autolock {
				fp = key.Fingerprint()
			}
			f := Findings(cfg, swarm.Cluster{ID: "swarm1", AutoLock: tc.autolock}, fp, entries, tc.esc, alT0)
			if f.Enabled != tc.autolock || f.EscrowMatches != tc.wantMatches || f.KeyDue != tc.wantDue || f.EscrowPath != alPath {
				t.Errorf("Findings() = %+v; want enabled %v matches %v due %v", f, tc.autolock, tc.wantMatches, tc.wantDue)
			}
			if !f.LastEscrow.Equal(alT0.Add(-2999 * time.Hour)) {
				t.Errorf("LastEscrow = %s; want the ledger's escrow time", f.LastEscrow)
			}
			if tc.autolock && (f.KeyAge.D() != 3000*time.Hour || f.KeyFingerprint != key.Short()) {
				t.Errorf("key age %s fingerprint %s; want 3000h and the short fingerprint", f.KeyAge, f.KeyFingerprint)
			}
		})
	}
}

func TestVaultColocation(t *testing.T) {
	nodes := []swarm.Node{
		{ID: "m1", Hostname: "mgr-1", Role: "manager", Addr: "10.0.0.11", ManagerAddr: "10.0.0.11:2377"},
		{ID: "w1", Hostname: "wrk-1", Role: "worker", Addr: "10.0.0.21"},
	}
	vault := swarm.ServiceEndpoint{Name: "ops_vault", Stack: "ops", Image: "hashicorp/vault:1.21", PublishedPorts: []uint32{8200}, VirtualIPs: []string{"10.0.1.5"}}
	web := swarm.ServiceEndpoint{Name: "web", Image: "nginx", PublishedPorts: []uint32{443}}
	cases := []struct {
		name     string
		addr     string
		services []swarm.ServiceEndpoint
		resolved []string
		want     int
	}{
		{name: "external vault", addr: "https://vault.example.com:8200", services: []swarm.ServiceEndpoint{web}, resolved: []string{"192.0.2.10"}, want: 0},
		{name: "service name", addr: "http://vault:8200", services: []swarm.ServiceEndpoint{vault}, want: 1},
		{name: "stack-qualified service name", addr: "http://ops_vault:8200", services: []swarm.ServiceEndpoint{vault}, want: 1},
		{name: "tasks. name", addr: "http://tasks.vault:8200", services: []swarm.ServiceEndpoint{vault}, want: 1},
		{name: "virtual IP", addr: "http://10.0.1.5:8200", services: []swarm.ServiceEndpoint{{Name: "v", VirtualIPs: []string{"10.0.1.5"}}}, want: 1},
		{name: "node address and published port", addr: "https://10.0.0.21:443", services: []swarm.ServiceEndpoint{web}, want: 1},
		{name: "node hostname and published port", addr: "https://mgr-1", services: []swarm.ServiceEndpoint{web}, want: 1},
		{name: "resolves to a node, published port", addr: "https://vault.internal", services: []swarm.ServiceEndpoint{web}, resolved: []string{"10.0.0.11"}, want: 1},
		{name: "localhost and published port", addr: "http://127.0.0.1:8200", services: []swarm.ServiceEndpoint{{Name: "x", PublishedPorts: []uint32{8200}}}, want: 1},
		{name: "vault image publishes the port behind a balancer", addr: "https://vault.example.com:8200", services: []swarm.ServiceEndpoint{vault}, resolved: []string{"192.0.2.10"}, want: 1},
		{name: "same port, other image, host elsewhere", addr: "https://vault.example.com:443", services: []swarm.ServiceEndpoint{web}, resolved: []string{"192.0.2.10"}, want: 0},
		{name: "not a URL", addr: "vault", services: []swarm.ServiceEndpoint{vault}, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := VaultColocation(tc.addr, tc.services, nodes, tc.resolved)
			if len(got) != tc.want {
				t.Errorf("VaultColocation(%q) = %q; want %d warnings", tc.addr, got, tc.want)
			}
		})
	}
}

func TestRotateKeyWarnsWhenVaultRunsInTheSwarm(t *testing.T) {
	eng, led, esc := newALEngine(true), ledgertest.New(), newALEscrow()
	eng.services = []swarm.ServiceEndpoint{{Name: "vault", Image: "hashicorp/vault", PublishedPorts: []uint32{8200}}}
	a := newAutolock(eng, led, esc, config.ModeEnforce)
	a.VaultAddr = "http://vault:8200"
	var logs bytes.Buffer
	res, err := a.RotateKey(t.Context(), RotateKeyOptions{}, domaintest.Env(alT0, &logs))
	if err != nil || len(res.Warnings) == 0 || !strings.Contains(logs.String(), "vault escrow target may run in this swarm") {
		t.Errorf("RotateKey() = %v, warnings %q; want a warning logged and returned", err, res.Warnings)
	}
}

var alT0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

// TestAutolockAdoptionFoundEscrowed: a key enabled and escrowed by a holder stopped before its record
// (crash point autolock.after-enable-escrow) is adopted by the next pass, which writes no second escrow;
// the adoption names the Vault version that holds it, so the audit trail records the escrow once.
func TestAutolockAdoptionFoundEscrowed(t *testing.T) {
	eng, esc := newALEngine(true), newALEscrow()
	fp := sensitive.New(eng.key).Fingerprint()
	esc.recs[alPath] = secrets.EscrowRecord{Key: sensitive.New(eng.key), SwarmID: "swarm1", Fingerprint: fp, Version: 3}
	led := ledgertest.New()
	a := newAutolock(eng, led, esc, config.ModeEnforce)
	var logs bytes.Buffer
	if err := a.Task().Run(t.Context(), domaintest.Env(alT0, &logs)); err != nil {
		t.Fatal(err)
	}
	all := led.All()
	if got := strings.Join(led.Kinds(), ","); got != "unlock-key/adopted" || esc.stores != 0 || len(eng.calls) != 0 {
		t.Fatalf("ledger = %s, %d escrow writes, engine calls %v; want one adoption and nothing written", got, esc.stores, eng.calls)
	}
	if d := all[0].Details; d["vault_version"] != "3" || d["vault_path"] != alPath || d["fingerprint"] != fp {
		t.Errorf("adoption details = %v; want vault_version 3 at %s and the key's fingerprint", d, alPath)
	}
}
