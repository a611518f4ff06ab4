// Package ledgertest is the one in-memory rotation ledger of the unit tests. Its Append has the real
// ledger's semantics (swarm.Ledger.Append): entries get the next sequence numbers, and the written entries
// are returned with their Seq. It counts Append calls, so a test can hold a pass to one write.
package ledgertest

import (
	"context"
	"sync"

	"github.com/swarmguard/swarmguard/swarm"
)

// Ledger is an in-memory ledger. The zero value is empty and ready; it is safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	entries []swarm.Entry
	seq     uint64
	appends int

	// ReadErr, when set, is returned by Entries.
	ReadErr error
	// AppendErr, when set, is returned by Append, which then writes nothing.
	AppendErr error
}

// New returns a ledger holding entries (their Seq is assigned in order).
func New(entries ...swarm.Entry) *Ledger {
	l := &Ledger{}
	l.put(entries)
	return l
}

func (l *Ledger) put(es []swarm.Entry) []swarm.Entry {
	out := make([]swarm.Entry, 0, len(es))
	for _, e := range es {
		l.seq++
		e.Seq = l.seq
		l.entries = append(l.entries, e)
		out = append(out, e)
	}
	return out
}

// Entries returns a copy of every entry, oldest first.
func (l *Ledger) Entries(context.Context) ([]swarm.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ReadErr != nil {
		return nil, l.ReadErr
	}
	return append([]swarm.Entry(nil), l.entries...), nil
}

// Append writes entries in one step and returns them with their Seq.
func (l *Ledger) Append(_ context.Context, es ...swarm.Entry) ([]swarm.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.appends++
	if l.AppendErr != nil {
		return nil, l.AppendErr
	}
	return l.put(es), nil
}

// Appends is how many times Append was called.
func (l *Ledger) Appends() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appends
}

// Kinds lists the entries as kind/result, oldest first.
func (l *Ledger) Kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, e.Kind+"/"+e.Result)
	}
	return out
}

// Set replaces the entries (their Seq continues from the last one).
func (l *Ledger) Set(entries ...swarm.Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
	l.put(entries)
}

// All returns a copy of every entry, oldest first, ignoring ReadErr.
func (l *Ledger) All() []swarm.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]swarm.Entry(nil), l.entries...)
}
