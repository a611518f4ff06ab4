package operator

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/swarm"
)

// failingLedger refuses every write.
type failingLedger struct{ appends int }

func (f *failingLedger) Entries(context.Context) ([]swarm.Entry, error) { return nil, nil }
func (f *failingLedger) Append(context.Context, ...swarm.Entry) ([]swarm.Entry, error) {
	f.appends++
	return nil, errors.New("raft: entry too large")
}

// Each action recorded is audited, once, with the ledger's failure named, when the ledger write fails.
func TestRecordAuditsEvenWhenTheLedgerWriteFails(t *testing.T) {
	var buf syncBuffer
	aud := audit.New(t.Context(), slog.New(slog.NewJSONHandler(&buf, nil)), nil)
	ctx := audit.With(t.Context(), aud)
	led := &failingLedger{}
	entries := []swarm.Entry{
		{Kind: swarm.KindSecret, Actor: "a", Result: swarm.ResultOK, Details: map[string]string{"secret": "one"}},
		{Kind: swarm.KindSecret, Actor: "a", Result: swarm.ResultOK, Details: map[string]string{"secret": "two"}},
	}
	if err := Record(ctx, led, entries...); err == nil {
		t.Fatal("Record with a failing ledger returned nil; want the write's error")
	}
	if led.appends != 1 {
		t.Errorf("ledger appends = %d; want 1 (one write for the batch)", led.appends)
	}
	if entries[0].Details[DetailLedgerError] != "" {
		t.Error("Record changed the caller's entry details")
	}
	ids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var l struct {
			Msg    string       `json:"msg"`
			Record audit.Record `json:"record"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if l.Msg != "audit" {
			continue
		}
		if l.Record.Details[DetailLedgerError] != "raft: entry too large" {
			t.Errorf("record %s details = %v; want ledger_error naming the failed write", l.Record.ID, l.Record.Details)
		}
		ids[l.Record.ID] = true
	}
	if len(ids) != 2 {
		t.Errorf("distinct audit records = %d; want 2:\n%s", len(ids), buf.String())
	}
}
