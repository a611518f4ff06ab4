package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/sensitive"
)

// escKV is a recording fake of a KV v2 path store with versions, check-and-set and deletions.
type escKV struct {
	versions  map[string][]map[string]string // path -> versions (index+1 = version)
	deleted   map[string]map[int]bool
	conflicts int   // answer this many writes with a CAS conflict after someone else wrote
	writeErr  error // every write fails so
	readErr   error // every read fails so
	corrupt   bool  // read-backs return a different key
	calls     []string
}

func newEscKV() *escKV {
	return &escKV{versions: map[string][]map[string]string{}, deleted: map[string]map[int]bool{}}
}

func (k *escKV) ReadVersion(_ context.Context, path string, version int) (Value, error) {
	k.calls = append(k.calls, fmt.Sprintf("read %s@%d", path, version))
	if k.readErr != nil {
		return Value{}, k.readErr
	}
	vs := k.versions[path]
	if version == 0 {
		version = len(vs)
	}
	if version == 0 || version > len(vs) || k.deleted[path][version] {
		return Value{}, fmt.Errorf("reading %q: %w", path, ErrNotFound)
	}
	fields := map[string]string{}
	for f, v := range vs[version-1] {
		fields[f] = v
	}
	if k.corrupt {
		fields[EscrowFieldKey] = "SWMKEY-1-somethingelse"
	}
	return NewValue(path, version, fields), nil
}

func (k *escKV) Metadata(_ context.Context, path string) (Metadata, error) {
	k.calls = append(k.calls, "metadata "+path)
	if k.readErr != nil {
		return Metadata{}, k.readErr
	}
	vs := k.versions[path]
	if len(vs) == 0 {
		return Metadata{}, ErrNotFound
	}
	md := Metadata{Path: path, Mount: "secret/", KVVersion: 2, CurrentVersion: len(vs)}
	for i := range vs {
		vi := VersionInfo{Version: i + 1}
		if k.deleted[path][i+1] {
			vi.DeletionTime = time.Unix(1, 0)
		}
		md.Versions = append(md.Versions, vi)
	}
	return md, nil
}

func (k *escKV) WriteCAS(_ context.Context, path string, data map[string]string, cas int) (int, error) {
	k.calls = append(k.calls, fmt.Sprintf("write %s cas=%d", path, cas))
	if k.writeErr != nil {
		return 0, k.writeErr
	}
	if k.conflicts > 0 {
		k.conflicts--
		k.versions[path] = append(k.versions[path], map[string]string{EscrowFieldSwarmID: "swarm1", EscrowFieldKey: "SWMKEY-1-racer", EscrowFieldFingerprint: "x"})
		return 0, fmt.Errorf("writing %q: %w", path, ErrConflict)
	}
	if cas != len(k.versions[path]) {
		return 0, fmt.Errorf("writing %q: %w", path, ErrConflict)
	}
	k.versions[path] = append(k.versions[path], data)
	return len(k.versions[path]), nil
}

func (k *escKV) writeCount() int {
	n := 0
	for _, c := range k.calls {
		if strings.HasPrefix(c, "write") {
			n++
		}
	}
	return n
}

const escPath = "secret/swarmguard/swarm1/unlock-key"

var escT0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

func TestEscrowStoreKey(t *testing.T) {
	key := sensitive.New("SWMKEY-1-newsecretpart")
	cases := []struct {
		name        string
		setup       func(*escKV)
		wantErr     error
		wantVersion int
		wantWrites  int
		unchanged   bool
	}{
		{name: "empty path: first version", wantVersion: 1, wantWrites: 1},
		{name: "older key of this swarm is kept as a version", setup: func(k *escKV) {
			k.versions[escPath] = []map[string]string{{EscrowFieldKey: "SWMKEY-1-oldsecretpart", EscrowFieldSwarmID: "swarm1", EscrowFieldFingerprint: sensitive.New("SWMKEY-1-oldsecretpart").Fingerprint()}}
		}, wantVersion: 2, wantWrites: 1},
		{name: "same key already there: nothing written", setup: func(k *escKV) {
			k.versions[escPath] = []map[string]string{{EscrowFieldKey: key.Reveal(), EscrowFieldSwarmID: "swarm1", EscrowFieldFingerprint: key.Fingerprint()}}
		}, wantVersion: 1, wantWrites: 0, unchanged: true},
		{name: "another swarm's record is refused", setup: func(k *escKV) {
			k.versions[escPath] = []map[string]string{{EscrowFieldKey: "SWMKEY-1-othersecretpart", EscrowFieldSwarmID: "swarm2"}}
		}, wantErr: ErrOtherSwarm},
		{name: "a record without swarm ID is refused", setup: func(k *escKV) {
			k.versions[escPath] = []map[string]string{{"password": "hunter2"}}
		}, wantErr: ErrOtherSwarm},
		{name: "lost check-and-set is re-read and retried", setup: func(k *escKV) { k.conflicts = 1 }, wantVersion: 2, wantWrites: 2},
		{name: "deleted newest version: metadata gives the version", setup: func(k *escKV) {
			k.versions[escPath] = []map[string]string{
				{EscrowFieldKey: "SWMKEY-1-oldsecretpart", EscrowFieldSwarmID: "swarm1"},
				{EscrowFieldKey: "SWMKEY-1-old2secretpart", EscrowFieldSwarmID: "swarm1"}}
			k.deleted[escPath] = map[int]bool{2: true}
		}, wantVersion: 3, wantWrites: 2},
		{name: "deleted newest version of another swarm is still refused", setup: func(k *escKV) {
			k.versions[escPath] = []map[string]string{
				{EscrowFieldKey: "SWMKEY-1-othersecretpart", EscrowFieldSwarmID: "swarm2"},
				{EscrowFieldKey: "SWMKEY-1-other2secretpart", EscrowFieldSwarmID: "swarm2"}}
			k.deleted[escPath] = map[int]bool{2: true}
		}, wantErr: ErrOtherSwarm, wantWrites: 1}, // the blind cas=0 attempt conflicts; nothing is overwritten
		{name: "vault down", setup: func(k *escKV) { k.readErr = fmt.Errorf("reading: %w: connection refused", ErrUnreachable) }, wantErr: ErrUnreachable},
		{name: "write refused", setup: func(k *escKV) { k.writeErr = fmt.Errorf("writing: %w", ErrPermissionDenied) }, wantErr: ErrPermissionDenied, wantWrites: 1},
		{name: "read-back differs", setup: func(k *escKV) { k.corrupt = true }, wantErr: ErrFingerprintMismatch, wantWrites: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kv := newEscKV()
			if tc.setup != nil {
				tc.setup(kv)
			}
			e := &Escrow{kv: kv}
			rc, err := e.StoreKey(t.Context(), escPath, "swarm1", key, escT0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("StoreKey() = %v; want %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secretpart") {
				t.Errorf("StoreKey() error holds a key: %d bytes", len(err.Error()))
			}
			if kv.writeCount() != tc.wantWrites {
				t.Errorf("calls = %v; want %d writes", kv.calls, tc.wantWrites)
			}
			if tc.wantErr != nil {
				return
			}
			if rc.Version != tc.wantVersion || rc.Unchanged != tc.unchanged || rc.Path != escPath {
				t.Errorf("StoreKey() = %+v; want version %d unchanged %v", rc, tc.wantVersion, tc.unchanged)
			}
			rec, err := e.LoadKey(t.Context(), escPath)
			if err != nil {
				t.Fatalf("LoadKey() = %v", err)
			}
			if !rec.Key.Equal(key) || rec.SwarmID != "swarm1" || rec.Fingerprint != key.Fingerprint() || rec.Version != tc.wantVersion {
				t.Errorf("LoadKey() = version %d swarm %q fingerprint %q; want the stored key", rec.Version, rec.SwarmID, rec.Fingerprint)
			}
			if !tc.unchanged && !rec.Time.Equal(escT0) {
				t.Errorf("LoadKey().Time = %s; want %s", rec.Time, escT0)
			}
		})
	}
}

func TestEscrowStoreKeyRefusesEmpty(t *testing.T) {
	e := &Escrow{kv: newEscKV()}
	if _, err := e.StoreKey(t.Context(), escPath, "swarm1", sensitive.Value{}, escT0); !errors.Is(err, ErrInvalid) {
		t.Errorf("StoreKey(empty key) = %v; want ErrInvalid", err)
	}
	if _, err := e.StoreKey(t.Context(), escPath, "", sensitive.New("SWMKEY-1-x"), escT0); !errors.Is(err, ErrInvalid) {
		t.Errorf("StoreKey(no swarm) = %v; want ErrInvalid", err)
	}
}

func TestEscrowPublishTokens(t *testing.T) {
	const path = "secret/swarm/join-tokens"
	kv := newEscKV()
	e := &Escrow{kv: kv}
	w1, m1 := sensitive.New("SWMTKN-1-d-w1secretpart"), sensitive.New("SWMTKN-1-d-m1secretpart")
	rc, err := e.PublishTokens(t.Context(), path, "swarm1", w1, m1, escT0)
	if err != nil || rc.Version != 1 {
		t.Fatalf("PublishTokens() = %+v, %v; want version 1", rc, err)
	}
	if rc, err = e.PublishTokens(t.Context(), path, "swarm1", w1, m1, escT0.Add(time.Hour)); err != nil || !rc.Unchanged || rc.Version != 1 {
		t.Errorf("PublishTokens(same) = %+v, %v; want unchanged version 1", rc, err)
	}
	w2 := sensitive.New("SWMTKN-1-d-w2secretpart")
	if rc, err = e.PublishTokens(t.Context(), path, "swarm1", w2, m1, escT0.Add(2*time.Hour)); err != nil || rc.Version != 2 {
		t.Errorf("PublishTokens(new worker) = %+v, %v; want version 2", rc, err)
	}
	rec, err := e.LoadTokens(t.Context(), path)
	if err != nil || !rec.Worker.Equal(w2) || !rec.Manager.Equal(m1) || rec.SwarmID != "swarm1" ||
		rec.WorkerFingerprint != w2.Fingerprint() || rec.ManagerFingerprint != m1.Fingerprint() {
		t.Errorf("LoadTokens() = %v; want the new worker and the old manager token", err)
	}
	if _, err := e.PublishTokens(t.Context(), path, "swarm2", w2, m1, escT0); !errors.Is(err, ErrOtherSwarm) {
		t.Errorf("PublishTokens(other swarm) = %v; want ErrOtherSwarm", err)
	}
}

func TestKeyFingerprintMatchesSHA256Hex(t *testing.T) {
	// The same value as sensitive.Value.Fingerprint: hex SHA-256 ("abc" is the FIPS 180-2 example).
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := sensitive.New("abc").Fingerprint(); got != want {
		t.Errorf("abc.Fingerprint() = %s; want %s", got, want)
	}
	if got := (sensitive.Value{}).Fingerprint(); got != "" {
		t.Errorf("empty.Fingerprint() = %q; want empty", got)
	}
}
