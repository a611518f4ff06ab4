package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Ledger kinds: what was rotated, set or synced.
const (
	KindJoinTokenWorker  = "join-token-worker"
	KindJoinTokenManager = "join-token-manager"
	KindUnlockKey        = "unlock-key"
	KindUnlockKeyEscrow  = "unlock-key-escrow"
	KindCA               = "ca"
	KindNodeCertExpiry   = "node-cert-expiry"
	KindSecret           = "secret"
	KindNetwork          = "network"
	KindWorkload         = "workload"
	// KindJoinWindow records a join window opened (a join token handed out for a bounded time) or closed.
	KindJoinWindow = "join-window"
	// KindIncident records one step of an incident response, under the incident's ID.
	KindIncident = "incident"
)

// Kinds lists every ledger kind.
var Kinds = []string{KindJoinTokenWorker, KindJoinTokenManager, KindUnlockKey, KindUnlockKeyEscrow, KindCA, KindNodeCertExpiry, KindSecret, KindNetwork, KindWorkload, KindJoinWindow, KindIncident}

// Ledger results.
const (
	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultAdopted = "adopted" // the clock of something swarmguard never rotated starts now
)

// Entry is one record of the ledger. It never holds a secret value: tokens and keys appear only as
// fingerprints in Details.
type Entry struct {
	Kind    string            `json:"kind"`
	At      time.Time         `json:"at"`
	Actor   string            `json:"actor"`
	Reason  string            `json:"reason"`
	Result  string            `json:"result"`
	Details map[string]string `json:"details,omitempty"`
	// Seq orders entries; it is assigned by the ledger on append.
	Seq uint64 `json:"seq"`
}

// DefaultLedgerName is the config object holding the ledger.
const DefaultLedgerName = "swarmguard-state"

// DefaultLedgerMaxPerKind bounds the ledger to the newest entries of each kind. With 11 kinds of about 300
// bytes each, 50 per kind keeps the object near 165 KB, far below Raft's 1.5 MB transaction limit; at the
// worst (every entry at MaxEntryBytes) it is within LedgerByteBudget.
const DefaultLedgerMaxPerKind = 50

// ledgerSchema is the version of the label layout below; a ledger written by another layout is reported,
// never rewritten.
const ledgerSchema = "1"

const (
	labelSchema      = "swarmguard.schema"
	labelSeq         = "swarmguard.seq"
	labelEntryPrefix = "swarmguard.entry."
	ledgerBody       = "swarmguard state ledger: the entries are in this object's labels; do not edit them by hand.\n"
)

// maxLedgerAttempts bounds the re-read-and-retry loop of one append. With a handful of replicas and CLI
// users racing, each attempt loses to at most one other writer, so this is generous.
const maxLedgerAttempts = 60

// Ledger is the rotation ledger kept in the labels of one config object, written only by compare-and-swap.
type Ledger struct {
	c          *Client
	name       string
	maxPerKind int
}

// NewLedger returns the ledger kept in the config object name, bounded to maxPerKind entries per kind.
func (c *Client) NewLedger(name string, maxPerKind int) *Ledger {
	if name == "" {
		name = DefaultLedgerName
	}
	if maxPerKind <= 0 {
		maxPerKind = DefaultLedgerMaxPerKind
	}
	return &Ledger{c: c, name: name, maxPerKind: maxPerKind}
}

// Name is the config object's name.
func (l *Ledger) Name() string { return l.name }

// CorruptError names the labels that could not be parsed.
type CorruptError struct {
	Object string
	Labels []string
	Why    string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("ledger %q: %s (labels %s): inspect it with `docker config inspect %s`; swarmguard will not overwrite it; "+
		"fix or remove those labels, or remove the object to start an empty ledger", e.Object, e.Why, strings.Join(e.Labels, ", "), e.Object)
}

func (e *CorruptError) Unwrap() error { return ErrCorruptLedger }

// Entries reads the ledger, oldest first. A ledger that does not exist yet is empty; any other read
// failure is returned as is.
func (l *Ledger) Entries(ctx context.Context) ([]Entry, error) {
	obj, err := l.c.ConfigByName(ctx, l.name)
	if errors.Is(err, ErrNotFound) {
		return []Entry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ledger: %w", err)
	}
	entries, _, err := parseLedger(l.name, obj.Labels)
	return entries, err
}

// Latest returns the newest entry of kind whose result is one of results (any result when none given),
// and false when there is none.
func Latest(entries []Entry, kind string, results ...string) (Entry, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Kind != kind {
			continue
		}
		if len(results) == 0 {
			return e, true
		}
		for _, r := range results {
			if e.Result == r {
				return e, true
			}
		}
	}
	return Entry{}, false
}

// Append adds entries to the ledger by compare-and-swap, re-reading and retrying when another writer wins,
// and trims each kind to the bound. It returns the entries with their sequence numbers.
func (l *Ledger) Append(ctx context.Context, entries ...Entry) ([]Entry, error) {
	for _, e := range entries {
		if !knownKind(e.Kind) {
			return nil, fmt.Errorf("ledger entry kind %q is not one of %s", e.Kind, strings.Join(Kinds, ", "))
		}
	}
	var lastErr error
	for attempt := 0; attempt < maxLedgerAttempts; attempt++ {
		if attempt > 0 {
			// Jitter so that writers who lost together do not collide again.
			d := time.Duration(5+rand.IntN(20*min(attempt, 10))) * time.Millisecond
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
			}
		}
		obj, err := l.c.ConfigByName(ctx, l.name)
		if errors.Is(err, ErrNotFound) {
			labels, out := appendLabels(map[string]string{labelSchema: ledgerSchema, labelSeq: "0"}, entries, l.maxPerKind)
			_, err = l.c.CreateConfig(ctx, l.name, labels, ledgerBody)
			if errors.Is(err, ErrAlreadyExists) {
				lastErr = err
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("creating ledger: %w", err)
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading ledger: %w", err)
		}
		if _, _, err := parseLedger(l.name, obj.Labels); err != nil {
			return nil, err
		}
		labels, out := appendLabels(obj.Labels, entries, l.maxPerKind)
		err = l.c.UpdateConfigLabels(ctx, obj, labels)
		if errors.Is(err, ErrConflict) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("writing ledger: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("writing ledger: gave up after %d conflicting writes: %w", maxLedgerAttempts, lastErr)
}

func knownKind(k string) bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// parseLedger decodes the labels: the history and the state's entries trimmed from it, oldest first (see
// ledger_state.go). It fails on anything it does not understand, naming the labels.
func parseLedger(name string, labels map[string]string) ([]Entry, uint64, error) {
	history, seq, err := parseHistory(name, labels)
	if err != nil {
		return nil, 0, err
	}
	st, err := parseState(name, labels, history)
	if err != nil {
		return nil, 0, err
	}
	return st.merge(history), seq, nil
}

// parseHistory decodes the entry labels, the bounded history.
func parseHistory(name string, labels map[string]string) ([]Entry, uint64, error) {
	var bad []string
	entries := []Entry{}
	hasEntries := false
	for k, v := range labels {
		if !strings.HasPrefix(k, labelEntryPrefix) {
			continue
		}
		hasEntries = true
		seq, err := strconv.ParseUint(strings.TrimPrefix(k, labelEntryPrefix), 10, 64)
		var e Entry
		if err == nil {
			err = json.Unmarshal([]byte(v), &e)
		}
		if err != nil || e.Kind == "" || e.At.IsZero() {
			bad = append(bad, k)
			continue
		}
		e.Seq = seq
		entries = append(entries, e)
	}
	schema, hasSchema := labels[labelSchema]
	if hasSchema && schema != ledgerSchema {
		return nil, 0, &CorruptError{Object: name, Labels: []string{labelSchema}, Why: fmt.Sprintf("schema %q is not one this swarmguard knows (%s); is a newer swarmguard writing it?", schema, ledgerSchema)}
	}
	if !hasSchema && (hasEntries || len(labels) > 0) {
		return nil, 0, &CorruptError{Object: name, Labels: []string{labelSchema}, Why: "no schema label"}
	}
	seqStr, ok := labels[labelSeq]
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if !ok || err != nil {
		bad = append(bad, labelSeq)
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, 0, &CorruptError{Object: name, Labels: bad, Why: "unparseable entries"}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Seq < entries[j].Seq })
	return entries, seq, nil
}

// appendLabels returns a new label set with entries appended (each capped in size, sequence numbers
// assigned, a failure identical to its kind's newest entry merged into it), the state updated with them in
// the same label set, and the history trimmed to the retention rules (see retain).
func appendLabels(old map[string]string, entries []Entry, max int) (map[string]string, []Entry) {
	labels := make(map[string]string, len(old)+len(entries))
	for k, v := range old {
		labels[k] = v
	}
	// Append refused a ledger it cannot parse before we got here; what parses is the state to carry on.
	history, _, _ := parseHistory("", old)
	st, err := parseState("", old, history)
	if err != nil {
		st = ledgerState{}
		for _, e := range history {
			st.fold(e)
		}
	}
	seq, _ := strconv.ParseUint(labels[labelSeq], 10, 64)
	before := seq
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		e.At = e.At.UTC().Truncate(time.Millisecond)
		e, _ = encodeEntry(e) // capped as stored, so that a merge compares like with like
		if prev, prevSeq, ok := newestOfKind(labels, e.Kind); ok && sameFailure(prev, e) {
			e = mergeFailure(prev, e)
			delete(labels, entryKey(prevSeq))
		}
		seq++
		e.Seq = seq
		var b []byte
		e, b = encodeEntry(e)
		labels[entryKey(seq)] = string(b)
		st.fold(e)
		out = append(out, e)
	}
	labels[labelSeq] = strconv.FormatUint(seq, 10)
	retain(labels, max, LedgerByteBudget, before)
	st.bound()
	writeState(labels, st, seq)
	return labels, out
}

func entryKey(seq uint64) string { return fmt.Sprintf("%s%012d", labelEntryPrefix, seq) }
