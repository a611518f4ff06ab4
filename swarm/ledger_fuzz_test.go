package swarm

import (
	"strings"
	"testing"
	"time"
)

// labelsFromText turns fuzz input into a label set: one "key=value" per line, as a hostile or damaged
// config object could carry.
func labelsFromText(s string) map[string]string {
	labels := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			labels[k] = v
		}
	}
	return labels
}

// FuzzParseLedger: whatever labels the ledger's config object holds, parseLedger never panics, and what it
// accepts is ordered, complete and survives an append.
func FuzzParseLedger(f *testing.F) {
	good, _ := appendLabels(map[string]string{labelSchema: ledgerSchema, labelSeq: "0"},
		[]Entry{{Kind: KindJoinTokenWorker, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Actor: "operator:n1", Result: ResultOK,
			Details: map[string]string{"fingerprint": "ab12"}}}, 50)
	var b strings.Builder
	for k, v := range good {
		b.WriteString(k + "=" + v + "\n")
	}
	f.Add(b.String())
	f.Add("")
	f.Add("swarmguard.schema=1\nswarmguard.seq=18446744073709551615\n")
	f.Add("swarmguard.schema=2\n")
	f.Add("swarmguard.schema=1\nswarmguard.seq=1\nswarmguard.entry.000000000001={\"kind\":\"ca\",\"at\":\"0001-01-01T00:00:00Z\"}\n")
	f.Add("swarmguard.schema=1\nswarmguard.seq=1\nswarmguard.entry.-1={\"kind\":\"ca\",\"at\":\"2026-01-01T00:00:00Z\"}\n")
	f.Add("swarmguard.schema=1\nswarmguard.seq=x\nswarmguard.entry.1=[]\n")
	f.Fuzz(func(t *testing.T, text string) {
		labels := labelsFromText(text)
		entries, seq, err := parseLedger("swarmguard-state", labels)
		if err != nil {
			if entries != nil {
				t.Fatalf("parseLedger() = %v entries and error %v; want none with an error", len(entries), err)
			}
			return
		}
		for i, e := range entries {
			if e.Kind == "" || e.At.IsZero() {
				t.Fatalf("entry %d = %+v accepted without a kind or time", i, e)
			}
			if i > 0 && entries[i-1].Seq > e.Seq {
				t.Fatalf("entries out of order: %d before %d", entries[i-1].Seq, e.Seq)
			}
		}
		next, _ := appendLabels(labels, []Entry{{Kind: KindCA, At: time.Unix(1, 0), Actor: "fuzz", Result: ResultOK}}, DefaultLedgerMaxPerKind)
		again, seq2, err := parseLedger("swarmguard-state", next)
		if err != nil {
			t.Fatalf("parseLedger(after an append to an accepted ledger) = %v", err)
		}
		if seq2 != seq+1 && seq != ^uint64(0) {
			t.Fatalf("seq after one append = %d; want %d", seq2, seq+1)
		}
		if len(again) == 0 {
			t.Fatal("no entries after an append")
		}
	})
}
