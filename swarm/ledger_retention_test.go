package swarm

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func emptyLabels() map[string]string {
	return map[string]string{labelSchema: ledgerSchema, labelSeq: "0"}
}

func labelBytes(labels map[string]string) int {
	n := 0
	for k, v := range labels {
		n += len(k) + len(v)
	}
	return n
}

func parsed(t *testing.T, labels map[string]string) []Entry {
	t.Helper()
	es, _, err := parseLedger("state-test", labels)
	if err != nil {
		t.Fatalf("parseLedger after append: %v", err)
	}
	return es
}

// TestLedgerFailuresNeverEvictTheClock: 60 failures of a kind (each with its own error) after its last ok
// entry: the history keeps the newest 50 (oldest trimmed first), and the ok entry, the credential's clock,
// is kept as state and still read.
func TestLedgerFailuresNeverEvictTheClock(t *testing.T) {
	labels, _ := appendLabels(emptyLabels(), []Entry{{Kind: KindJoinTokenWorker, At: t0, Actor: "a", Result: ResultOK, Details: map[string]string{"fingerprint": "f1"}}}, DefaultLedgerMaxPerKind)
	for i := range 60 {
		labels, _ = appendLabels(labels, []Entry{{Kind: KindJoinTokenWorker, At: t0.Add(time.Duration(i+1) * time.Minute), Actor: "a", Result: ResultFailed,
			Details: map[string]string{"error": fmt.Sprintf("attempt %d: vault sealed", i)}}}, DefaultLedgerMaxPerKind)
	}
	history, _, err := parseHistory("state-test", labels)
	if err != nil || len(history) != DefaultLedgerMaxPerKind {
		t.Errorf("history = %d entries, %v; want the bound %d", len(history), err, DefaultLedgerMaxPerKind)
	}
	es := parsed(t, labels)
	ok, found := Latest(es, KindJoinTokenWorker, ResultOK, ResultAdopted)
	if !found || ok.Details["fingerprint"] != "f1" || !ok.At.Equal(t0) {
		t.Fatalf("Latest(ok) = %+v, %v; want the ok entry of %s", ok, found, t0)
	}
	if last, _ := Latest(es, KindJoinTokenWorker, ResultFailed); last.Details["error"] != "attempt 59: vault sealed" {
		t.Errorf("newest failure = %q; want attempt 59", last.Details["error"])
	}
	if len(es) != DefaultLedgerMaxPerKind+1 || es[1].Details["error"] != "attempt 10: vault sealed" {
		t.Errorf("entries = %d, oldest failure kept = %q; want the clock and the newest 50 failures (attempt 10 on)", len(es), es[1].Details["error"])
	}
}

// TestLedgerMergesRepeatedFailures: the same failure 60 times is one entry with a count, the first and the
// newest time; a different failure, or an ok, starts a new entry.
func TestLedgerMergesRepeatedFailures(t *testing.T) {
	fail := func(i int, msg string) Entry {
		return Entry{Kind: KindSecret, At: t0.Add(time.Duration(i) * time.Minute), Actor: "operator:n1", Reason: "scheduled", Result: ResultFailed,
			Details: map[string]string{"secret": "db", "error": msg}}
	}
	labels := emptyLabels()
	for i := range 60 {
		labels, _ = appendLabels(labels, []Entry{fail(i, "rollout of service api ended paused")}, 3)
	}
	es := parsed(t, labels)
	if len(es) != 1 {
		t.Fatalf("entries after 60 identical failures = %d; want 1", len(es))
	}
	e := es[0]
	if e.Details[DetailRepeats] != "60" || !e.At.Equal(t0.Add(59*time.Minute)) || e.Details[DetailFirstAt] != "2026-11-01T03:00:00.000Z" || e.Seq != 60 {
		t.Errorf("merged entry = %+v; want repeats 60, at the newest, first_at the first, seq 60", e)
	}
	labels, _ = appendLabels(labels, []Entry{fail(61, "vault sealed")}, 3)
	labels, _ = appendLabels(labels, []Entry{{Kind: KindSecret, At: t0.Add(62 * time.Minute), Actor: "operator:n1", Result: ResultOK, Details: map[string]string{"secret": "db"}}}, 3)
	labels, _ = appendLabels(labels, []Entry{fail(63, "vault sealed")}, 3)
	var got []string
	for _, e := range parsed(t, labels) {
		got = append(got, e.Result+"/"+e.Details["error"]+"/"+e.Details[DetailRepeats])
	}
	if want := "failed/vault sealed/,ok//,failed/vault sealed/"; strings.Join(got, ",") != want {
		t.Errorf("entries = %s; want %s", strings.Join(got, ","), want)
	}
}

// TestLedgerTrimsOldestFirst: over the per-kind bound, the history keeps the newest entries whatever their
// result; the newest ok entry trimmed from it is kept as state.
func TestLedgerTrimsOldestFirst(t *testing.T) {
	var in []Entry
	for i, r := range []string{ResultOK, ResultFailed, ResultOK, ResultFailed, ResultOK, ResultFailed} {
		in = append(in, Entry{Kind: KindCA, At: t0.Add(time.Duration(i) * time.Hour), Result: r, Reason: fmt.Sprint(i)})
	}
	labels, _ := appendLabels(emptyLabels(), in, 4)
	var got []string
	for _, e := range parsed(t, labels) {
		got = append(got, e.Reason)
	}
	if strings.Join(got, ",") != "2,3,4,5" {
		t.Errorf("kept = %v; want the newest four: 2,3,4,5", got)
	}
	labels, _ = appendLabels(emptyLabels(), in[:4], 1) // ok, failed, ok, failed with a bound of 1
	got = nil
	for _, e := range parsed(t, labels) {
		got = append(got, e.Reason)
	}
	if strings.Join(got, ",") != "2,3" {
		t.Errorf("bound 1 kept %v; want the newest entry (3) and, as state, the newest ok one (2)", got)
	}
}

// TestLedgerCapsSizes: a 10 KiB reason, long details and text that JSON escapes sixfold are stored cut,
// each entry's label within MaxEntryBytes, and the cut is said.
func TestLedgerCapsSizes(t *testing.T) {
	long := strings.Repeat("rotated after the incident review of 2026-11-30. ", 210) // > 10 KiB
	nasty := strings.Repeat("<\"\x01é", 3000)
	details := map[string]string{"services": strings.Repeat("svc-", 500)}
	for i := range 40 {
		details[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", 100)
	}
	for _, tc := range []struct {
		name string
		e    Entry
	}{
		{"10 KiB reason", Entry{Kind: KindJoinTokenWorker, At: t0, Actor: "cli:root@host", Reason: long, Result: ResultOK}},
		{"escaped text everywhere", Entry{Kind: KindJoinTokenWorker, At: t0, Actor: nasty, Reason: nasty, Result: ResultOK, Details: map[string]string{"error": nasty, nasty: nasty}}},
		{"many and long details", Entry{Kind: KindSecret, At: t0, Actor: "a", Reason: "r", Result: ResultFailed, Details: details}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			labels, out := appendLabels(emptyLabels(), []Entry{tc.e}, DefaultLedgerMaxPerKind)
			v := labels[entryKey(1)]
			if n := len(entryKey(1)) + len(v); n > MaxEntryBytes {
				t.Errorf("entry label = %d bytes; want at most %d", n, MaxEntryBytes)
			}
			es := parsed(t, labels)
			if len(es) != 1 || es[0].Details[DetailCut] == "" || out[0].Details[DetailCut] == "" {
				t.Fatalf("stored %+v; want one entry saying what was cut", es)
			}
			if tc.e.Reason == long && (!strings.HasPrefix(long, strings.TrimSuffix(es[0].Reason, "…")) || len(es[0].Reason) > maxReasonBytes || !strings.Contains(es[0].Details[DetailCut], "reason")) {
				t.Errorf("reason stored as %q (cut %q); want its first %d bytes and the cut named", es[0].Reason, es[0].Details[DetailCut], maxReasonBytes)
			}
		})
	}
}

// TestLedgerByteBudget: a ledger already over the budget (entries written without bounds) is trimmed on the
// next append, oldest first, and every kind keeps its newest ok entry (as state); the append succeeds.
func TestLedgerByteBudget(t *testing.T) {
	labels := emptyLabels()
	seq := 0
	put := func(kind, result string, size int) {
		seq++
		labels[entryKey(uint64(seq))] = fmt.Sprintf(`{"kind":%q,"at":"2026-11-01T03:00:00Z","actor":"old","reason":%q,"result":%q,"seq":%d}`, kind, strings.Repeat("x", size), result, seq)
	}
	for _, k := range Kinds {
		put(k, ResultOK, 20000)
	}
	for i := 0; i < 120; i++ {
		put(Kinds[i%len(Kinds)], []string{ResultFailed, ResultOK}[i%2], 18000)
	}
	labels[labelSeq] = fmt.Sprint(seq)
	if labelBytes(labels) < 2*LedgerByteBudget {
		t.Fatalf("test ledger = %d bytes; want well over the budget", labelBytes(labels))
	}
	got, out := appendLabels(labels, []Entry{{Kind: KindCA, At: t0, Result: ResultFailed, Reason: "new"}}, 500)
	history := 0
	for k, v := range got {
		if !strings.HasPrefix(k, labelStatePrefix) && k != labelStateSeq {
			history += len(k) + len(v)
		}
	}
	if history > LedgerByteBudget {
		t.Errorf("history after append = %d bytes; want at most %d", history, LedgerByteBudget)
	}
	if _, ok := got[entryKey(out[0].Seq)]; !ok {
		t.Errorf("the appended entry was trimmed away")
	}
	es := parsed(t, got)
	for _, k := range Kinds {
		if _, ok := Latest(es, k, ResultOK); !ok {
			t.Errorf("kind %s lost its newest ok entry", k)
		}
	}
	state := 0
	for k, v := range got {
		if strings.HasPrefix(k, labelStatePrefix) {
			state += len(k) + len(v)
		}
	}
	if state > StateByteBudget {
		t.Errorf("state = %d bytes; want at most %d", state, StateByteBudget)
	}
}

func TestMaxLedgerPerKindFits(t *testing.T) {
	if MaxLedgerPerKind < DefaultLedgerMaxPerKind {
		t.Fatalf("MaxLedgerPerKind = %d; want at least the default %d", MaxLedgerPerKind, DefaultLedgerMaxPerKind)
	}
	if worst := len(Kinds) * MaxLedgerPerKind * MaxEntryBytes; worst > LedgerByteBudget {
		t.Errorf("%d kinds × %d entries × %d bytes = %d; want within the budget %d", len(Kinds), MaxLedgerPerKind, MaxEntryBytes, worst, LedgerByteBudget)
	}
}
