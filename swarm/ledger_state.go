package swarm

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// State is not history. What a decision depends on is kept in the ledger object's state labels, apart from
// its bounded history (the entry labels), and is never trimmed by the history's retention:
//
//   - each kind's newest ok or adopted entry (the clock of a credential; the unlock key's fingerprint);
//   - each open join window (its open entry, until its close entry);
//   - each secret mapping whose newest entry is a failed rollout (what the next holder must not retry);
//   - the steps of the newest incidents (what a resumed incident skips).
//
// State labels are written in the same compare-and-swap update as the entries that change them. A state
// label holds a copy of the entry it keeps, so Entries returns history and state merged in sequence order,
// and a reader sees what it would see if nothing had been trimmed. A ledger written by a version without
// state (no state-seq label), or entries appended by such a version since (sequence above state-seq), are
// folded into the state on read and on the next append: the state is derived once from the history left.
const (
	labelStatePrefix = "swarmguard.state."
	labelStateSeq    = "swarmguard.state-seq"

	stateLast     = "last."     // + kind
	stateWindow   = "window."   // + window ID
	stateSecret   = "secret."   // + mapping name
	stateIncident = "incident." // + incident ID + "/" + step
)

// Ledger detail keys the state is keyed on (the domains write them).
const (
	StateDetailSecret        = "secret"         // a secret entry's mapping
	StateDetailTo            = "to"             // a secret entry's wanted version
	StateDetailFailedService = "failed_service" // a failed rollout's service
	StateDetailError         = "error"
	StateDetailWindow        = "window" // a join-window entry's ID
	StateDetailWindowAction  = "action" // open | close
	StateDetailIncident      = "incident"
	StateDetailStep          = "step"
)

// Bounds of the state. The state is sized by the configuration check (StateFits): its fixed part, plus one
// secret state per mapping.
const (
	// MaxStateWindows bounds the open join windows kept; swarmguard opens at most one per token kind.
	MaxStateWindows = 4
	// MaxStateIncidentSteps bounds the incident steps kept: the newest incidents' steps, whole incidents.
	MaxStateIncidentSteps = 16
	// MaxSecretStateBytes bounds one mapping's failed-rollout state label, key included (a compact form:
	// the wanted version, the failed service and the start of the error).
	MaxSecretStateBytes = 320
	// StateByteBudget bounds the state labels: with LedgerByteBudget for the history, the object stays below
	// Raft's 1.5 MiB transaction limit.
	StateByteBudget = 384 << 10
)

// StateFixedBytes is the state's worst size without the mappings: each kind's newest ok entry, the open
// windows and the incident steps, each at MaxEntryBytes.
var StateFixedBytes = (len(Kinds) + MaxStateWindows + MaxStateIncidentSteps) * MaxEntryBytes

// MaxStateMappings is the number of secret mappings whose failure state fits StateByteBudget at worst.
var MaxStateMappings = (StateByteBudget - StateFixedBytes) / MaxSecretStateBytes

// ledgerState is the decoded state: label key (without the prefix) to the entry it keeps.
type ledgerState map[string]Entry

// stateKeyOK: a state key holds no separator that would make two keys one.
func stateKeyOK(s string) bool { return s != "" && !strings.ContainsAny(s, "/\n") }

// fold applies one entry, in sequence order, to the state.
func (st ledgerState) fold(e Entry) {
	if e.Result == ResultOK || e.Result == ResultAdopted {
		st[stateLast+e.Kind] = e
	}
	switch e.Kind {
	case KindJoinWindow:
		id := e.Details[StateDetailWindow]
		if e.Result != ResultOK || !stateKeyOK(id) {
			return
		}
		switch e.Details[StateDetailWindowAction] {
		case "open":
			st[stateWindow+id] = e
		case "close":
			delete(st, stateWindow+id)
		}
	case KindSecret:
		name := e.Details[StateDetailSecret]
		if !stateKeyOK(name) {
			return
		}
		if e.Result == ResultFailed {
			st[stateSecret+name] = e
		} else {
			delete(st, stateSecret+name)
		}
	case KindIncident:
		id, step := e.Details[StateDetailIncident], e.Details[StateDetailStep]
		if e.Result == ResultOK && stateKeyOK(id) && stateKeyOK(step) {
			st[stateIncident+id+"/"+step] = e
		}
	}
}

// bound keeps the state within its bounds: the newest MaxStateWindows windows, the steps of the newest
// incidents (whole incidents, at most MaxStateIncidentSteps steps), and, should stale mappings' failures
// outgrow StateByteBudget, the newest of those.
func (st ledgerState) bound() {
	type kv struct {
		key string
		seq uint64
	}
	newestFirst := func(prefix string) []kv {
		var out []kv
		for k, e := range st {
			if strings.HasPrefix(k, prefix) {
				out = append(out, kv{k, e.Seq})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].seq > out[j].seq })
		return out
	}
	for i, w := range newestFirst(stateWindow) {
		if i >= MaxStateWindows {
			delete(st, w.key)
		}
	}
	// Incidents, by their newest step.
	steps := newestFirst(stateIncident)
	incOf := func(k string) string { return strings.SplitN(strings.TrimPrefix(k, stateIncident), "/", 2)[0] }
	kept, n := map[string]bool{}, 0
	for _, s := range steps {
		id := incOf(s.key)
		if _, seen := kept[id]; seen {
			continue
		}
		count := 0
		for _, t := range steps {
			if incOf(t.key) == id {
				count++
			}
		}
		kept[id] = n+count <= MaxStateIncidentSteps
		if kept[id] {
			n += count
		}
	}
	for _, s := range steps {
		if !kept[incOf(s.key)] {
			delete(st, s.key)
		}
	}
	secretsBytes := 0
	secrets := newestFirst(stateSecret)
	for _, s := range secrets {
		secretsBytes += MaxSecretStateBytes
		if secretsBytes > StateByteBudget-StateFixedBytes {
			delete(st, s.key)
		}
	}
}

// encodeSecretState is the compact label value of a mapping's failed rollout:
// v1|seq|at|to|failed_service|error, the error cut so that key and value fit MaxSecretStateBytes.
func encodeSecretState(key string, e Entry) string {
	head := fmt.Sprintf("v1|%d|%s|%s|%s|", e.Seq, e.At.UTC().Format(time.RFC3339Nano), strings.ReplaceAll(e.Details[StateDetailTo], "|", ""),
		strings.ReplaceAll(e.Details[StateDetailFailedService], "|", ""))
	room := MaxSecretStateBytes - len(labelStatePrefix) - len(key) - len(head)
	if room < 0 {
		room = 0
	}
	msg, _ := cut(e.Details[StateDetailError], room)
	if len(msg) > room { // room below the marker's length
		msg = ""
	}
	return head + msg
}

func decodeSecretState(key, v string) (Entry, bool) {
	p := strings.SplitN(v, "|", 6)
	if len(p) != 6 || p[0] != "v1" {
		return Entry{}, false
	}
	seq, err := strconv.ParseUint(p[1], 10, 64)
	if err != nil {
		return Entry{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, p[2])
	if err != nil {
		return Entry{}, false
	}
	d := map[string]string{StateDetailSecret: strings.TrimPrefix(key, stateSecret), StateDetailTo: p[3]}
	if p[4] != "" {
		d[StateDetailFailedService] = p[4]
	}
	if p[5] != "" {
		d[StateDetailError] = p[5]
	}
	return Entry{Kind: KindSecret, At: at, Result: ResultFailed, Details: d, Seq: seq}, true
}

// parseState reads the state labels and folds in the history entries it has not seen (all of them when
// the ledger has no state yet). It fails on a state label it cannot parse, naming it.
func parseState(name string, labels map[string]string, history []Entry) (ledgerState, error) {
	st := ledgerState{}
	var from uint64
	if v, ok := labels[labelStateSeq]; ok {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, &CorruptError{Object: name, Labels: []string{labelStateSeq}, Why: "unparseable state"}
		}
		from = n
	}
	var bad []string
	for k, v := range labels {
		if !strings.HasPrefix(k, labelStatePrefix) {
			continue
		}
		key := strings.TrimPrefix(k, labelStatePrefix)
		var e Entry
		ok := false
		if strings.HasPrefix(key, stateSecret) {
			e, ok = decodeSecretState(key, v)
		} else if json.Unmarshal([]byte(v), &e) == nil && e.Kind != "" && !e.At.IsZero() {
			ok = true
		}
		if !ok {
			bad = append(bad, k)
			continue
		}
		st[key] = e
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, &CorruptError{Object: name, Labels: bad, Why: "unparseable state"}
	}
	for _, e := range history {
		if e.Seq > from {
			st.fold(e)
		}
	}
	st.bound()
	return st, nil
}

// writeState replaces the state labels with st, through seq.
func writeState(labels map[string]string, st ledgerState, seq uint64) {
	for k := range labels {
		if strings.HasPrefix(k, labelStatePrefix) {
			delete(labels, k)
		}
	}
	for key, e := range st {
		if strings.HasPrefix(key, stateSecret) {
			labels[labelStatePrefix+key] = encodeSecretState(key, e)
			continue
		}
		_, b := encodeEntry(e)
		labels[labelStatePrefix+key] = string(b)
	}
	labels[labelStateSeq] = strconv.FormatUint(seq, 10)
}

// merge is history with the state's entries that retention trimmed from it, in sequence order.
func (st ledgerState) merge(history []Entry) []Entry {
	have := make(map[uint64]bool, len(history))
	for _, e := range history {
		have[e.Seq] = true
	}
	out := history
	for _, e := range st {
		if !have[e.Seq] {
			have[e.Seq] = true
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}
