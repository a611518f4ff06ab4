package swarm

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)

func TestLedgerAppendAndTrim(t *testing.T) {
	_, c := newFakeEngine(t)
	l := c.NewLedger("state-test", 3)
	ctx := t.Context()
	got, err := l.Entries(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("Entries(no object) = %v, %v; want empty", got, err)
	}
	for i := 0; i < 5; i++ {
		if _, err := l.Append(ctx, Entry{Kind: KindJoinTokenWorker, At: t0.Add(time.Duration(i) * time.Hour), Actor: "test", Reason: fmt.Sprint(i), Result: ResultOK}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append(ctx, Entry{Kind: KindCA, At: t0, Actor: "test", Result: ResultOK, Details: map[string]string{"serial": "01"}}); err != nil {
		t.Fatal(err)
	}
	got, err = l.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range got {
		if e.Kind == KindJoinTokenWorker {
			reasons = append(reasons, e.Reason)
		}
	}
	if strings.Join(reasons, ",") != "2,3,4" {
		t.Errorf("worker entries after trim = %v; want the newest 3: 2,3,4", reasons)
	}
	if e, ok := Latest(got, KindCA); !ok || e.Details["serial"] != "01" {
		t.Errorf("Latest(ca) = %+v, %v", e, ok)
	}
	if _, err := l.Append(ctx, Entry{Kind: "bogus", At: t0}); err == nil {
		t.Error("Append(kind bogus) = nil; want an error naming the kinds")
	}
}

func TestLedgerRetriesConflicts(t *testing.T) {
	f, c := newFakeEngine(t)
	l := c.NewLedger("state-test", 10)
	ctx := t.Context()
	if _, err := l.Append(ctx, Entry{Kind: KindCA, At: t0, Result: ResultOK}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.conflict = 3
	f.mu.Unlock()
	if _, err := l.Append(ctx, Entry{Kind: KindCA, At: t0, Result: ResultOK}); err != nil {
		t.Fatalf("Append after 3 conflicts = %v; want success after retries", err)
	}
	got, _ := l.Entries(ctx)
	if len(got) != 2 {
		t.Errorf("entries = %d; want 2", len(got))
	}
}

func TestLedgerConcurrentWriters(t *testing.T) {
	_, c := newFakeEngine(t)
	l := c.NewLedger("state-test", 100)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if _, err := l.Append(ctx, Entry{Kind: KindSecret, At: t0, Actor: fmt.Sprintf("w%d", w), Reason: fmt.Sprint(i), Result: ResultOK}); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, _ := l.Entries(ctx)
	if len(got) != 40 {
		t.Errorf("entries = %d; want 40", len(got))
	}
}

func TestLedgerCorrupt(t *testing.T) {
	cases := []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"bad json", map[string]string{labelSchema: "1", labelSeq: "1", entryKey(1): "{not json"}, entryKey(1)},
		{"no schema", map[string]string{labelSeq: "1", entryKey(1): `{"kind":"ca","at":"2026-01-01T00:00:00Z"}`}, labelSchema},
		{"future schema", map[string]string{labelSchema: "9", labelSeq: "0"}, "schema \"9\""},
		{"bad seq", map[string]string{labelSchema: "1", labelSeq: "x"}, labelSeq},
		{"entry without time", map[string]string{labelSchema: "1", labelSeq: "1", entryKey(1): `{"kind":"ca"}`}, entryKey(1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newFakeEngine(t)
			ctx := t.Context()
			obj, err := c.CreateConfig(ctx, "state-test", tc.labels, "x")
			if err != nil {
				t.Fatal(err)
			}
			l := c.NewLedger("state-test", 10)
			_, err = l.Entries(ctx)
			if !errors.Is(err, ErrCorruptLedger) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Entries() = %v; want ErrCorruptLedger naming %q", err, tc.want)
			}
			if _, err := l.Append(ctx, Entry{Kind: KindCA, At: t0, Result: ResultOK}); !errors.Is(err, ErrCorruptLedger) {
				t.Fatalf("Append(corrupt) = %v; want ErrCorruptLedger", err)
			}
			after, _ := c.ConfigByName(ctx, "state-test")
			if after.Version != obj.Version {
				t.Errorf("corrupt ledger was rewritten: version %d -> %d", obj.Version, after.Version)
			}
		})
	}
}
