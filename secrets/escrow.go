package secrets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/swarmguard/swarmguard/sensitive"
)

// Fields of the unlock-key escrow record at its KV v2 path. The record says which swarm it belongs to, so
// one swarm's key never silently replaces another's.
const (
	EscrowFieldKey         = "key"
	EscrowFieldSwarmID     = "swarm_id"
	EscrowFieldTime        = "time"
	EscrowFieldFingerprint = "fingerprint"
)

// Fields of the published join tokens at tokens.publish.vault_path.
const (
	TokensFieldWorker             = "worker"
	TokensFieldManager            = "manager"
	TokensFieldSwarmID            = "swarm_id"
	TokensFieldTime               = "time"
	TokensFieldWorkerFingerprint  = "worker_fingerprint"
	TokensFieldManagerFingerprint = "manager_fingerprint"
)

// maxEscrowAttempts bounds the re-read-and-retry loop when a check-and-set write loses to another writer.
// Only swarmguard replicas (one of them at a time, under the lease) and a person write these paths.
const maxEscrowAttempts = 5

var (
	// ErrOtherSwarm means the path holds a record of another swarm (or one without a swarm ID): it is
	// never overwritten.
	ErrOtherSwarm = errors.New("the vault path holds another swarm's record")
	// ErrFingerprintMismatch means what Vault gave back is not what was written.
	ErrFingerprintMismatch = errors.New("the fingerprint read back differs from the one written")
)

// escrowKV is the part of *KV the escrow uses.
type escrowKV interface {
	ReadVersion(ctx context.Context, path string, version int) (Value, error)
	Metadata(ctx context.Context, path string) (Metadata, error)
	WriteCAS(ctx context.Context, path string, data map[string]string, cas int) (int, error)
}

var _ escrowKV = (*KV)(nil)

// Escrow keeps the swarm's unlock key, and optionally its join tokens, in Vault KV v2: each write is
// check-and-set against the version read, earlier versions stay (the previous key remains retrievable),
// and every write is read back and compared before it counts.
type Escrow struct {
	kv escrowKV
}

// NewEscrow returns the escrow over a KV client (Vault.KV()).
func NewEscrow(kv *KV) *Escrow { return &Escrow{kv: kv} }

// EscrowRecord is one escrowed unlock key.
type EscrowRecord struct {
	Key         sensitive.Value
	SwarmID     string
	Time        time.Time
	Fingerprint string // as stored; Key.Fingerprint() when the record is intact
	Version     int    // the KV v2 version it was read from
}

// Receipt says where a record was stored.
type Receipt struct {
	Path    string
	Version int
	// Unchanged is true when the newest version already held this exact record's key or tokens, so
	// nothing was written (a retry after a crash finds its work done).
	Unchanged bool
}

// StoreKey escrows an unlock key of swarmID at path. It refuses (ErrOtherSwarm) to write over a record
// of another swarm, writes with check-and-set on the version it read, and reads the new version back,
// comparing fingerprints. The key never appears in an error.
func (e *Escrow) StoreKey(ctx context.Context, path, swarmID string, key sensitive.Value, at time.Time) (Receipt, error) {
	if key.IsZero() {
		return Receipt{}, fmt.Errorf("%w: escrowing an empty unlock key", ErrInvalid)
	}
	if swarmID == "" {
		return Receipt{}, fmt.Errorf("%w: escrowing an unlock key without a swarm ID", ErrInvalid)
	}
	fp := key.Fingerprint()
	data := map[string]string{
		EscrowFieldKey:         key.Reveal(),
		EscrowFieldSwarmID:     swarmID,
		EscrowFieldTime:        at.UTC().Format(time.RFC3339Nano),
		EscrowFieldFingerprint: fp,
	}
	same := func(v Value) bool {
		k, _ := v.Field(EscrowFieldKey)
		f, _ := v.Field(EscrowFieldFingerprint)
		return f.Reveal() == fp && k.Fingerprint() == fp
	}
	return e.write(ctx, path, swarmID, EscrowFieldSwarmID, data, same)
}

// LoadKey reads the newest escrowed unlock key at path. A path with no record is ErrNotFound.
func (e *Escrow) LoadKey(ctx context.Context, path string) (EscrowRecord, error) {
	v, err := e.kv.ReadVersion(ctx, path, 0)
	if err != nil {
		return EscrowRecord{}, err
	}
	return escrowRecordFrom(v), nil
}

func escrowRecordFrom(v Value) EscrowRecord {
	k, _ := v.Field(EscrowFieldKey)
	id, _ := v.Field(EscrowFieldSwarmID)
	ts, _ := v.Field(EscrowFieldTime)
	fp, _ := v.Field(EscrowFieldFingerprint)
	at, _ := time.Parse(time.RFC3339Nano, ts.Reveal())
	return EscrowRecord{Key: k, SwarmID: id.Reveal(), Time: at, Fingerprint: fp.Reveal(), Version: v.Version}
}

// TokenRecord is the published pair of join tokens.
type TokenRecord struct {
	Worker, Manager                       sensitive.Value
	SwarmID                               string
	Time                                  time.Time
	WorkerFingerprint, ManagerFingerprint string
	Version                               int
}

// PublishTokens writes the current join tokens of swarmID to path, so that provisioning reads them from
// Vault; the same guards as StoreKey apply.
func (e *Escrow) PublishTokens(ctx context.Context, path, swarmID string, worker, manager sensitive.Value, at time.Time) (Receipt, error) {
	if worker.IsZero() || manager.IsZero() {
		return Receipt{}, fmt.Errorf("%w: publishing an empty join token", ErrInvalid)
	}
	if swarmID == "" {
		return Receipt{}, fmt.Errorf("%w: publishing join tokens without a swarm ID", ErrInvalid)
	}
	wfp, mfp := worker.Fingerprint(), manager.Fingerprint()
	data := map[string]string{
		TokensFieldWorker:             worker.Reveal(),
		TokensFieldManager:            manager.Reveal(),
		TokensFieldSwarmID:            swarmID,
		TokensFieldTime:               at.UTC().Format(time.RFC3339Nano),
		TokensFieldWorkerFingerprint:  wfp,
		TokensFieldManagerFingerprint: mfp,
	}
	same := func(v Value) bool {
		w, _ := v.Field(TokensFieldWorker)
		m, _ := v.Field(TokensFieldManager)
		return w.Fingerprint() == wfp && m.Fingerprint() == mfp
	}
	return e.write(ctx, path, swarmID, TokensFieldSwarmID, data, same)
}

// LoadTokens reads the published join tokens at path. A path with no record is ErrNotFound.
func (e *Escrow) LoadTokens(ctx context.Context, path string) (TokenRecord, error) {
	v, err := e.kv.ReadVersion(ctx, path, 0)
	if err != nil {
		return TokenRecord{}, err
	}
	w, _ := v.Field(TokensFieldWorker)
	m, _ := v.Field(TokensFieldManager)
	id, _ := v.Field(TokensFieldSwarmID)
	ts, _ := v.Field(TokensFieldTime)
	wf, _ := v.Field(TokensFieldWorkerFingerprint)
	mf, _ := v.Field(TokensFieldManagerFingerprint)
	at, _ := time.Parse(time.RFC3339Nano, ts.Reveal())
	return TokenRecord{Worker: w, Manager: m, SwarmID: id.Reveal(), Time: at,
		WorkerFingerprint: wf.Reveal(), ManagerFingerprint: mf.Reveal(), Version: v.Version}, nil
}

// write stores data at path by check-and-set. same says whether a stored version already holds what is
// being written; idField names the swarm-ID field that must match swarmID in any stored record.
func (e *Escrow) write(ctx context.Context, path, swarmID, idField string, data map[string]string, same func(Value) bool) (Receipt, error) {
	r := Receipt{Path: path}
	useMetadata := false
	var lastErr error
	for attempt := 0; attempt < maxEscrowAttempts; attempt++ {
		cur, cas, err := e.current(ctx, path, useMetadata)
		if err != nil {
			return r, err
		}
		if cur != nil {
			stored, _ := cur.Field(idField)
			if stored.Reveal() != swarmID {
				return r, fmt.Errorf("writing %q: %w: version %d belongs to swarm %q, this is swarm %q; set another path in the config, or remove that record if it is stale",
					path, ErrOtherSwarm, cur.Version, stored.Reveal(), swarmID)
			}
			if cur.Version == cas && same(*cur) {
				r.Version, r.Unchanged = cur.Version, true
				return r, nil
			}
		}
		ver, err := e.kv.WriteCAS(ctx, path, data, cas)
		if errors.Is(err, ErrConflict) {
			// Someone wrote since we read, or the newest version is deleted: look again, at the metadata.
			lastErr, useMetadata = err, true
			continue
		}
		if err != nil {
			return r, err
		}
		r.Version = ver
		back, err := e.kv.ReadVersion(ctx, path, ver)
		if err != nil {
			return r, fmt.Errorf("reading back version %d of %q: %w", ver, path, err)
		}
		if !same(back) {
			return r, fmt.Errorf("reading back version %d of %q: %w", ver, path, ErrFingerprintMismatch)
		}
		return r, nil
	}
	return r, fmt.Errorf("writing %q: gave up after %d check-and-set conflicts: %w", path, maxEscrowAttempts, lastErr)
}

// current returns the newest readable record at path (nil when there is none) and the version a
// check-and-set write must name. The quick way reads the newest version; after a conflict (the newest
// version was deleted, or another writer won) it asks the metadata.
func (e *Escrow) current(ctx context.Context, path string, useMetadata bool) (*Value, int, error) {
	if !useMetadata {
		v, err := e.kv.ReadVersion(ctx, path, 0)
		if err == nil {
			return &v, v.Version, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, 0, err
		}
		return nil, 0, nil
	}
	md, err := e.kv.Metadata(ctx, path)
	if errors.Is(err, ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	if md.KVVersion != 2 {
		return nil, 0, fmt.Errorf("%w: %q is on kv v%d; escrow needs kv v2 (vault kv enable-versioning %s)", ErrInvalid, path, md.KVVersion, md.Mount)
	}
	for i := len(md.Versions) - 1; i >= 0; i-- {
		vi := md.Versions[i]
		if vi.Destroyed || !vi.DeletionTime.IsZero() {
			continue
		}
		v, err := e.kv.ReadVersion(ctx, path, vi.Version)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return &v, md.CurrentVersion, nil
	}
	return nil, md.CurrentVersion, nil
}
