package swarm

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Size bounds of one ledger entry. A person's --reason of any length is accepted and stored cut to
// maxReasonBytes; a detail (an error text, a list of services) is cut to maxDetailBytes, and the details of
// one entry together to maxDetailsBytes (the keys in order; what does not fit is dropped and counted in
// DetailCut). With them an entry's label, key included, stays below MaxEntryBytes.
const (
	maxReasonBytes  = 256
	maxActorBytes   = 128
	maxResultBytes  = 16
	maxDetailKey    = 40
	maxDetailBytes  = 256
	maxDetailsBytes = 768
	// MaxEntryBytes bounds one entry's label (key and JSON value, with its fixed fields and escaping
	// headroom for the capped text).
	MaxEntryBytes = 1536
)

// LedgerByteBudget bounds the history labels of the ledger object, keys and values: 1 MiB, below Raft's
// 1.5 MiB transaction limit with room for the state (StateByteBudget) and the object's other fields. Past
// it, the oldest entries go first; the state is not trimmed (see ledger_state.go).
const LedgerByteBudget = 1 << 20

// MaxLedgerPerKind is the largest ledger.max_per_kind whose entries fit LedgerByteBudget even when every
// entry of every kind is as large as allowed: a larger bound could not be kept, and is refused (62 with
// the 11 kinds of Kinds).
var MaxLedgerPerKind = LedgerByteBudget / (len(Kinds) * MaxEntryBytes)

// Details the ledger itself writes.
const (
	// DetailRepeats counts the occurrences of a failure merged into one entry (absent: one).
	DetailRepeats = "repeats"
	// DetailFirstAt is when the first of merged failures happened (the entry's time is the newest's).
	DetailFirstAt = "first_at"
	// DetailCut names what was cut to fit the size bounds.
	DetailCut = "cut"
)

// cut returns s cut to at most n bytes on a rune boundary, marked with "…" when cut.
func cut(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	n -= len("…")
	if n < 0 {
		n = 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…", true
}

// encodeEntry is the label value of e, within MaxEntryBytes with its key: the size limits above, divided
// further while the JSON (whose escaping can make a text up to six times longer) is still too long.
func encodeEntry(e Entry) (Entry, []byte) {
	for div := 1; ; div *= 2 {
		c := capEntry(e, div)
		b, _ := json.Marshal(c) // an Entry of strings and a time always marshals
		if len(entryKey(c.Seq))+len(b) <= MaxEntryBytes || div >= 64 {
			return c, b
		}
	}
}

// capEntry bounds an entry's text fields and details to the size limits above, each divided by div.
func capEntry(e Entry, div int) Entry {
	var cuts []string
	var c bool
	if e.Reason, c = cut(e.Reason, maxReasonBytes/div); c {
		cuts = append(cuts, "reason")
	}
	if e.Actor, c = cut(e.Actor, maxActorBytes/div); c {
		cuts = append(cuts, "actor")
	}
	if e.Result, c = cut(e.Result, maxResultBytes); c {
		cuts = append(cuts, "result")
	}
	if len(e.Details) > 0 {
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := make(map[string]string, len(keys))
		total, dropped := 0, 0
		for _, k := range keys {
			v := e.Details[k]
			ck, kc := cut(k, maxDetailKey)
			cv, vc := cut(v, maxDetailBytes/div)
			if total+len(ck)+len(cv) > maxDetailsBytes/div {
				dropped++
				continue
			}
			if kc || vc {
				cuts = append(cuts, "details."+ck)
			}
			d[ck] = cv
			total += len(ck) + len(cv)
		}
		if dropped > 0 {
			cuts = append(cuts, fmt.Sprintf("%d details dropped", dropped))
		}
		e.Details = d
	}
	if len(cuts) > 0 {
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details[DetailCut], _ = cut(strings.Join(cuts, ", "), maxDetailBytes/div)
	}
	return e
}

// newestOfKind is the newest entry of kind in the labels.
func newestOfKind(labels map[string]string, kind string) (Entry, uint64, bool) {
	var best Entry
	var bestSeq uint64
	found := false
	for k, v := range labels {
		seq, ok := entrySeq(k)
		if !ok || (found && seq < bestSeq) {
			continue
		}
		var e Entry
		if json.Unmarshal([]byte(v), &e) != nil || e.Kind != kind {
			continue
		}
		best, bestSeq, found = e, seq, true
	}
	return best, bestSeq, found
}

func entrySeq(label string) (uint64, bool) {
	if !strings.HasPrefix(label, labelEntryPrefix) {
		return 0, false
	}
	seq, err := strconv.ParseUint(strings.TrimPrefix(label, labelEntryPrefix), 10, 64)
	return seq, err == nil
}

// sameFailure: both are failures of the same kind, actor, reason and details (but for the ledger's own
// merge details): a retry loop meeting the same error, which is kept as one entry with a count.
func sameFailure(prev, e Entry) bool {
	if prev.Result != ResultFailed || e.Result != ResultFailed || prev.Kind != e.Kind || prev.Actor != e.Actor || prev.Reason != e.Reason {
		return false
	}
	strip := func(d map[string]string) map[string]string {
		out := maps.Clone(d)
		delete(out, DetailRepeats)
		delete(out, DetailFirstAt)
		return out
	}
	return maps.Equal(strip(prev.Details), strip(e.Details))
}

// mergeFailure is e counted as one more occurrence of prev: e's time, prev's first time, the count.
func mergeFailure(prev, e Entry) Entry {
	n, err := strconv.Atoi(prev.Details[DetailRepeats])
	if err != nil || n < 1 {
		n = 1
	}
	first := prev.Details[DetailFirstAt]
	if first == "" {
		first = prev.At.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	d := maps.Clone(e.Details)
	if d == nil {
		d = map[string]string{}
	}
	d[DetailRepeats] = strconv.Itoa(n + 1)
	d[DetailFirstAt] = first
	e.Details = d
	return e
}

// retained is what retain knows of one entry label.
type retained struct {
	seq  uint64
	kind string
	size int
}

// retain trims the history (the entry labels): each kind to its newest max entries, then the whole history
// to budget bytes, oldest first whatever the result: a kind's history is always its newest entries, never a
// mix in which a failure was dropped before older successes. What a decision depends on (a kind's newest ok
// entry, a failed rollout, an open join window, an incident's steps) is kept apart as state (see
// ledger_state.go), which retention does not touch and which is not counted here. Nor are, for bytes, the
// entries of this append (sequence above appendedAfter) dropped: an append that succeeds has recorded what it
// was given.
func retain(labels map[string]string, max, budget int, appendedAfter uint64) {
	var all []*retained
	byKind := map[string][]*retained{}
	total := 0
	for k, v := range labels {
		if strings.HasPrefix(k, labelStatePrefix) || k == labelStateSeq {
			continue
		}
		total += len(k) + len(v)
		seq, ok := entrySeq(k)
		if !ok {
			continue
		}
		var e struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal([]byte(v), &e) != nil {
			continue // parseLedger refused corrupt ledgers before we got here
		}
		r := &retained{seq: seq, kind: e.Kind, size: len(k) + len(v)}
		all = append(all, r)
		byKind[e.Kind] = append(byKind[e.Kind], r)
	}
	oldestFirst := func(rs []*retained) {
		sort.Slice(rs, func(i, j int) bool { return rs[i].seq < rs[j].seq })
	}
	drop := func(r *retained) {
		if _, ok := labels[entryKey(r.seq)]; ok {
			total -= r.size
			delete(labels, entryKey(r.seq))
		}
	}
	for _, rs := range byKind {
		oldestFirst(rs)
		for i := 0; i < len(rs)-max; i++ {
			drop(rs[i])
		}
	}
	if total <= budget {
		return
	}
	oldestFirst(all)
	for _, r := range all {
		if total <= budget {
			return
		}
		if r.seq <= appendedAfter {
			drop(r)
		}
	}
}
