package swarm

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newestOf is the newest entry of kind whose detail key is val.
func newestOf(es []Entry, kind, key, val string) (Entry, bool) {
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Kind == kind && es[i].Details[key] == val {
			return es[i], true
		}
	}
	return Entry{}, false
}

// TestLedgerKeepsFailedRolloutMarker: a mapping's failed rollout stays its newest entry however many other
// mappings sync after it (finding 2): retention must not take the marker the next holder decides on while
// older ok entries stay.
func TestLedgerKeepsFailedRolloutMarker(t *testing.T) {
	_, c := newFakeEngine(t)
	l := c.NewLedger("state-test", DefaultLedgerMaxPerKind)
	ctx := t.Context()
	if _, err := l.Append(ctx, Entry{Kind: KindSecret, At: t0, Actor: "operator:n1", Result: ResultFailed,
		Details: map[string]string{"secret": "x", "to": "x-00000002", "failed_service": "api", "error": "rollout of service api ended paused"}}); err != nil {
		t.Fatal(err)
	}
	for i := range DefaultLedgerMaxPerKind {
		if _, err := l.Append(ctx, Entry{Kind: KindSecret, At: t0.Add(time.Duration(i+1) * time.Minute), Actor: "operator:n1", Result: ResultOK,
			Details: map[string]string{"secret": fmt.Sprintf("m%02d", i), "to": fmt.Sprintf("m%02d-00000001", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	es, err := l.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := newestOf(es, KindSecret, "secret", "x")
	if !ok || e.Result != ResultFailed || e.Details["failed_service"] != "api" {
		t.Fatalf("newest entry of mapping x after %d other syncs = %+v, %v; want its failed rollout on api", DefaultLedgerMaxPerKind, e, ok)
	}
}

// TestLedgerKeepsOpenJoinWindows: with ledger.max_per_kind 1, opening a manager window keeps the open worker
// window (finding 7); closing it then lets it go from the state.
func TestLedgerKeepsOpenJoinWindows(t *testing.T) {
	_, c := newFakeEngine(t)
	l := c.NewLedger("state-test", 1)
	ctx := t.Context()
	open := func(id, kind string, at time.Time) Entry {
		return Entry{Kind: KindJoinWindow, At: at, Actor: "cli:root", Reason: "new nodes", Result: ResultOK,
			Details: map[string]string{"window": id, "token": kind, "action": "open", "closes_at": at.Add(time.Hour).Format(time.RFC3339Nano)}}
	}
	for _, e := range []Entry{open("jw-1", TokenWorker, t0), open("jw-2", TokenManager, t0.Add(time.Minute))} {
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	es, err := l.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"jw-1", "jw-2"} {
		if e, ok := newestOf(es, KindJoinWindow, "window", id); !ok || e.Details["action"] != "open" {
			t.Errorf("window %s after opening both with max_per_kind 1: %+v, %v; want its open entry kept", id, e, ok)
		}
	}
}

// TestLedgerStateFromOldLedger: a ledger written without state (the previous version) has its state derived
// from its history when read and on the next append, which writes it; entries an older replica appends after
// that (above state-seq) are folded in too.
func TestLedgerStateFromOldLedger(t *testing.T) {
	old := emptyLabels()
	put := func(e Entry) {
		seq, _ := strconv.ParseUint(old[labelSeq], 10, 64)
		seq++
		e.Seq = seq
		_, b := encodeEntry(e)
		old[entryKey(seq)] = string(b)
		old[labelSeq] = strconv.FormatUint(seq, 10)
	}
	openW := Entry{Kind: KindJoinWindow, At: t0, Result: ResultOK, Details: map[string]string{"window": "jw-1", "token": TokenWorker, "action": "open"}}
	put(openW)
	put(Entry{Kind: KindSecret, At: t0, Result: ResultFailed, Details: map[string]string{"secret": "db", "to": "db-1", "failed_service": "api", "error": "paused"}})
	// With a bound of 1 the append trims both from the history; the state derived from it keeps them.
	labels, _ := appendLabels(old, []Entry{
		{Kind: KindJoinWindow, At: t0.Add(time.Minute), Result: ResultOK, Details: map[string]string{"window": "jw-2", "token": TokenManager, "action": "open"}},
		{Kind: KindSecret, At: t0.Add(time.Minute), Result: ResultOK, Details: map[string]string{"secret": "other"}},
	}, 1)
	if labels[labelStateSeq] != "4" || labels[labelStatePrefix+stateWindow+"jw-1"] == "" || labels[labelStatePrefix+stateSecret+"db"] == "" {
		t.Fatalf("labels after the first append = %v; want state-seq 4 and the state of jw-1 and db", labels)
	}
	es := parsed(t, labels)
	if e, ok := newestOf(es, KindSecret, "secret", "db"); !ok || e.Details["failed_service"] != "api" || e.Details["to"] != "db-1" || e.Details["error"] != "paused" || e.Seq != 2 {
		t.Errorf("db's newest entry = %+v, %v; want its failure (seq 2) from the state", e, ok)
	}
	// An older replica closes jw-1 and syncs db: it writes entries only, above state-seq.
	seq := uint64(4)
	for _, e := range []Entry{
		{Kind: KindJoinWindow, At: t0.Add(2 * time.Minute), Result: ResultOK, Details: map[string]string{"window": "jw-1", "token": TokenWorker, "action": "close"}},
		{Kind: KindSecret, At: t0.Add(2 * time.Minute), Result: ResultOK, Details: map[string]string{"secret": "db", "to": "db-2"}},
	} {
		seq++
		e.Seq = seq
		_, b := encodeEntry(e)
		labels[entryKey(seq)] = string(b)
	}
	labels[labelSeq] = "6"
	labels, _ = appendLabels(labels, []Entry{{Kind: KindCA, At: t0.Add(3 * time.Minute), Result: ResultOK}}, 1)
	if _, ok := labels[labelStatePrefix+stateWindow+"jw-1"]; ok {
		t.Errorf("jw-1 still open in the state after its close entry")
	}
	if _, ok := labels[labelStatePrefix+stateSecret+"db"]; ok {
		t.Errorf("db's failure still in the state after its ok entry")
	}
	if _, ok := labels[labelStatePrefix+stateWindow+"jw-2"]; !ok {
		t.Errorf("jw-2, still open, left the state")
	}
}

// TestLedgerStateSizes: a mapping's failure state fits MaxSecretStateBytes at the longest names and error;
// the state's worst size with MaxStateMappings mappings fits StateByteBudget, and with the history's worst,
// Raft's 1.5 MiB.
func TestLedgerStateSizes(t *testing.T) {
	name := strings.Repeat("n", 55)
	e := Entry{Kind: KindSecret, At: t0, Result: ResultFailed, Seq: 1 << 40, Details: map[string]string{"secret": name, "to": name + "-0123abcd",
		"failed_service": strings.Repeat("s", 63), "error": strings.Repeat("rollout of service x ended paused | ", 20)}}
	key := stateSecret + name
	v := encodeSecretState(key, e)
	if n := len(labelStatePrefix) + len(key) + len(v); n > MaxSecretStateBytes {
		t.Errorf("secret state label = %d bytes; want at most %d", n, MaxSecretStateBytes)
	}
	if got, ok := decodeSecretState(key, v); !ok || got.Details["to"] != e.Details["to"] || got.Details["failed_service"] != e.Details["failed_service"] || got.Seq != e.Seq {
		t.Errorf("decodeSecretState(encodeSecretState(e)) = %+v, %v", got, ok)
	}
	if StateFixedBytes+MaxStateMappings*MaxSecretStateBytes > StateByteBudget || MaxStateMappings < 1000 {
		t.Errorf("MaxStateMappings = %d; want at least 1000 within %d bytes", MaxStateMappings, StateByteBudget)
	}
	if worst := len(Kinds)*MaxLedgerPerKind*MaxEntryBytes + StateByteBudget; worst >= 3<<19 {
		t.Errorf("history and state at worst = %d bytes; want below Raft's %d", worst, 3<<19)
	}
}

// TestLedgerStateKeepsNewestIncidents: an incident's steps stay as state whatever the history's bound; past
// MaxStateIncidentSteps, whole incidents go, the oldest first.
func TestLedgerStateKeepsNewestIncidents(t *testing.T) {
	labels := emptyLabels()
	steps := []string{"worker-token", "manager-token", "unlock-key", "ca"}
	n := MaxStateIncidentSteps/len(steps) + 1
	for i := range n {
		for j, s := range steps {
			labels, _ = appendLabels(labels, []Entry{{Kind: KindIncident, At: t0.Add(time.Duration(i*10+j) * time.Minute), Result: ResultOK,
				Details: map[string]string{"incident": fmt.Sprintf("inc-%d", i), "step": s, "status": "done"}}}, 1)
		}
	}
	kept := map[string]int{}
	for _, e := range parsed(t, labels) {
		if e.Kind == KindIncident {
			kept[e.Details["incident"]]++
		}
	}
	for i := range n {
		want := len(steps)
		if i == 0 {
			want = 0
		}
		if got := kept[fmt.Sprintf("inc-%d", i)]; got != want {
			t.Errorf("steps of inc-%d kept = %d; want %d (%d incidents of %d steps, at most %d kept)", i, got, want, n, len(steps), MaxStateIncidentSteps)
		}
	}
}
