package tokens

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/crashpoint"
	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// Ledger detail keys of join-window entries (kind join-window) and of the rotations that close one.
const (
	DetailWindow       = swarm.StateDetailWindow       // the window's ID; also on the rotation that closed it
	DetailWindowToken  = "token"                       // worker | manager
	DetailWindowAction = swarm.StateDetailWindowAction // open | close (the ledger keeps an open window as state)
	DetailClosesAt     = "closes_at"                   // RFC 3339
	DetailWindowNodes  = "nodes"                       // the node limit, 0 for none
	DetailWindowJoined = "joined"                      // on the close: the nodes that joined while it was open
	DetailClosedBy     = "closed_by"                   // ttl | nodes | manual | rotated
	windowActionOpen   = "open"
	windowActionClose  = "close"
)

// Window is a join window: a join token handed out for a bounded time (or a bounded number of joins),
// rotated when it closes.
type Window struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"` // worker | manager
	OpenedAt time.Time `json:"opened_at"`
	ClosesAt time.Time `json:"closes_at"`
	// Nodes is the number of joins after which the window closes; 0: only by time.
	Nodes int `json:"nodes"`
	// Joined is how many nodes of the window's role joined since it opened (set by status and the pass).
	Joined int    `json:"joined"`
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
	// Fingerprint is the short fingerprint of the token handed out.
	Fingerprint string `json:"fingerprint"`
	// secret is the fingerprint of the handed-out token's secret part: a root CA rotation keeps it.
	secret string
	closed bool
}

// WindowsSchedule is when the join-windows loop looks: a window closes at most this long after its time
// is up (or its last node joined). With no window open a pass is one ledger read.
const WindowsSchedule = "@every 30s"

// WindowsTask is the controller's join-windows loop (operator.Task{Name: "join-windows"}): it closes the
// windows that are due between the tokens loop's passes.
func (t *Tokens) WindowsTask() operator.Task {
	return operator.Task{Name: "join-windows", Schedule: WindowsSchedule, Run: t.RunWindows}
}

// RunWindows is one pass of the join-windows loop: rotate the token of each window whose time is up or
// whose node limit joined, and record its close, in one ledger write. A failed read decides nothing.
func (t *Tokens) RunWindows(ctx context.Context, env operator.TaskEnv) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	entries, err := t.Ledger.Entries(ctx)
	if err != nil {
		return fmt.Errorf("reading the ledger: %w", err)
	}
	if len(Windows(entries, false)) == 0 {
		return nil
	}
	cl, err := t.Engine.Cluster(ctx)
	if err != nil {
		return fmt.Errorf("reading the swarm: %w", err)
	}
	wds, err := t.decideWindows(ctx, entries, cl, env.Time())
	if err != nil {
		return err
	}
	pp := decide(cl, nil, wds)
	operator.PrintPlan(env, pp.Plan()) // a dry run prints the plan Apply would act on
	if len(pp.steps) == 0 || env.DryRun {
		return nil
	}
	_, err = t.Apply(ctx, pp, env)
	return err
}

// NewWindowID is a fresh window ID: jw- and 8 random hex digits.
func NewWindowID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "jw-" + hex.EncodeToString(b[:])
}

// Windows reads every join window from the ledger, oldest first; closed ones are left out unless all.
func Windows(entries []swarm.Entry, all bool) []Window {
	byID := map[string]*Window{}
	var order []string
	for _, e := range entries {
		if e.Kind != swarm.KindJoinWindow || e.Result != swarm.ResultOK {
			continue
		}
		id := e.Details[DetailWindow]
		switch e.Details[DetailWindowAction] {
		case windowActionOpen:
			closes, err := time.Parse(time.RFC3339Nano, e.Details[DetailClosesAt])
			if err != nil || id == "" {
				continue // not one of ours to act on; the ledger keeps it for people
			}
			n, _ := strconv.Atoi(e.Details[DetailWindowNodes])
			byID[id] = &Window{ID: id, Kind: e.Details[DetailWindowToken], OpenedAt: e.At, ClosesAt: closes, Nodes: n, Actor: e.Actor,
				Reason: e.Reason, Fingerprint: sensitive.Short(e.Details[operator.DetailFingerprint]), secret: e.Details[operator.DetailSecretFingerprint]}
			order = append(order, id)
		case windowActionClose:
			if w := byID[id]; w != nil {
				w.closed = true
			}
		}
	}
	out := []Window{}
	for _, id := range order {
		if w := byID[id]; all || !w.closed {
			out = append(out, *w)
		}
	}
	return out
}

// CountJoined sets each window's Joined: the nodes of its role created after it opened.
func CountJoined(ws []Window, nodes []swarm.Node) {
	for i := range ws {
		ws[i].Joined = 0
		for _, n := range nodes {
			if n.Role == ws[i].Kind && n.CreatedAt.After(ws[i].OpenedAt) {
				ws[i].Joined++
			}
		}
	}
}

// WindowDecision is what the policy says of one open window.
type WindowDecision struct {
	Window Window
	// Close: the window ends now. Rotate: its token is rotated with it (false when the token was already
	// rotated since it opened: there is nothing left to revoke).
	Close, Rotate bool
	// By is why it closes: ttl | nodes | rotated | manual.
	By  string
	Why string
}

// DecideWindows decides for each open window (Joined counted) from the swarm's current tokens and now.
func DecideWindows(ws []Window, cl swarm.Cluster, now time.Time) []WindowDecision {
	out := make([]WindowDecision, 0, len(ws))
	for _, w := range ws {
		d := WindowDecision{Window: w}
		tok := cl.WorkerToken
		if w.Kind == swarm.TokenManager {
			tok = cl.ManagerToken
		}
		switch {
		case w.secret != "" && !tok.IsZero() && tokenSecretFingerprint(tok) != w.secret:
			d.Close, d.By = true, "rotated"
			d.Why = fmt.Sprintf("join window %s: the %s token it handed out was rotated since it opened", w.ID, w.Kind)
		case !now.Before(w.ClosesAt):
			d.Close, d.Rotate, d.By = true, true, "ttl"
			d.Why = fmt.Sprintf("join window %s closed: its time ended at %s", w.ID, w.ClosesAt.UTC().Format(time.RFC3339))
		case w.Nodes > 0 && w.Joined >= w.Nodes:
			d.Close, d.Rotate, d.By = true, true, "nodes"
			d.Why = fmt.Sprintf("join window %s closed: %d of %d nodes joined", w.ID, w.Joined, w.Nodes)
		default:
			d.Why = fmt.Sprintf("join window %s open until %s, %d joined", w.ID, w.ClosesAt.UTC().Format(time.RFC3339), w.Joined)
		}
		out = append(out, d)
	}
	return out
}

// requireWindowsDue says whether tokens.require_windows makes a token due: no window of its kind is open
// and the token in force was not minted by a rotation of swarmguard's (adopted, or changed outside the
// ledger), so it may have been handed out some other way.
func requireWindowsDue(d TokenDecision, open []Window) (bool, string) {
	for _, w := range open {
		if w.Kind == d.Kind {
			return false, ""
		}
	}
	if d.ChangedOutside || (d.Clock.Tracked && d.Clock.Adopted) {
		return true, fmt.Sprintf("%s token was not minted by swarmguard and no join window is open (tokens.require_windows)", d.Kind)
	}
	return false, ""
}

// ErrWindowOpen means a window of that kind is open already: one token, one window.
var ErrWindowOpen = errors.New("a join window of this kind is already open")

// OpenWindowOptions are a join window's terms.
type OpenWindowOptions struct {
	Kind  string // worker | manager
	TTL   time.Duration
	Nodes int
}

// OpenedWindow is what OpenWindow hands out: the window and the token (print it masked unless asked).
type OpenedWindow struct {
	Window Window
	Token  sensitive.Value
}

// observeOpen checks the window asked for and observes what opening it depends on (reads only): no window of
// its kind open in the ledger, and the swarm's token of that kind. OpenWindow acts on it; PlanOpenWindow shows it.
func (t *Tokens) observeOpen(ctx context.Context, o OpenWindowOptions) (swarm.Cluster, sensitive.Value, error) {
	if o.Kind != swarm.TokenWorker && o.Kind != swarm.TokenManager {
		return swarm.Cluster{}, sensitive.Value{}, fmt.Errorf("join window kind %q is not worker or manager", o.Kind)
	}
	if o.TTL <= 0 || o.Nodes < 0 {
		return swarm.Cluster{}, sensitive.Value{}, fmt.Errorf("a join window needs a positive ttl (got %s) and a node limit of 0 or more (got %d)", o.TTL, o.Nodes)
	}
	entries, err := t.Ledger.Entries(ctx)
	if err != nil {
		return swarm.Cluster{}, sensitive.Value{}, fmt.Errorf("reading the ledger: %w", err)
	}
	for _, w := range Windows(entries, false) {
		if w.Kind == o.Kind {
			return swarm.Cluster{}, sensitive.Value{}, fmt.Errorf("%w: %s, opened %s by %s, closes %s; close it first with `swarmguard join-window close %s`",
				ErrWindowOpen, w.ID, w.OpenedAt.UTC().Format(time.RFC3339), w.Actor, w.ClosesAt.UTC().Format(time.RFC3339), w.ID)
		}
	}
	cl, err := t.Engine.Cluster(ctx)
	if err != nil {
		return swarm.Cluster{}, sensitive.Value{}, fmt.Errorf("reading the swarm: %w", err)
	}
	tok := cl.WorkerToken
	if o.Kind == swarm.TokenManager {
		tok = cl.ManagerToken
	}
	if tok.IsZero() {
		return swarm.Cluster{}, sensitive.Value{}, fmt.Errorf("the swarm returned no %s join token (is this a manager?)", o.Kind)
	}
	return cl, tok, nil
}

// OpenWindow records a join window for the current token of a kind and returns that token; nothing is
// rotated. It refuses when a window of that kind is open. Call it under the lease.
func (t *Tokens) OpenWindow(ctx context.Context, o OpenWindowOptions, env operator.TaskEnv) (OpenedWindow, error) {
	cl, tok, err := t.observeOpen(ctx, o)
	if err != nil {
		return OpenedWindow{}, err
	}
	if err := env.CheckHolder(ctx); err != nil {
		return OpenedWindow{}, err
	}
	at := env.Time().UTC().Truncate(time.Millisecond)
	w := Window{ID: NewWindowID(), Kind: o.Kind, OpenedAt: at, ClosesAt: at.Add(o.TTL), Nodes: o.Nodes, Actor: env.Actor, Reason: env.Reason,
		Fingerprint: tok.Short(), secret: tokenSecretFingerprint(tok)}
	e := swarm.Entry{Kind: swarm.KindJoinWindow, At: at, Actor: env.Actor, Reason: env.Reason, Result: swarm.ResultOK, Details: map[string]string{
		DetailWindow: w.ID, DetailWindowToken: o.Kind, DetailWindowAction: windowActionOpen, DetailClosesAt: w.ClosesAt.Format(time.RFC3339Nano),
		DetailWindowNodes: strconv.Itoa(o.Nodes), operator.DetailFingerprint: tok.Fingerprint(), operator.DetailSecretFingerprint: w.secret,
		operator.DetailSwarmID: cl.ID,
	}}
	if err := operator.Record(ctx, t.Ledger, e); err != nil {
		return OpenedWindow{}, fmt.Errorf("recording the join window: %w", err)
	}
	crashpoint.At("join-window.after-open") // recorded; the token neither shown nor published
	env.Logger().Info("opened join window", "window", w.ID, "kind", o.Kind, "closes_at", w.ClosesAt, "nodes", o.Nodes, "fingerprint", tok.Short(), "actor", env.Actor)
	return OpenedWindow{Window: w, Token: tok}, nil
}

// ErrNoWindow means no open join window matches.
var ErrNoWindow = errors.New("no open join window")

// CloseWindow ends an open window early (by ID, or by kind worker|manager) and rotates its token, in one
// ledger write with the rotation. Call it under the lease.
func (t *Tokens) CloseWindow(ctx context.Context, which string, env operator.TaskEnv) (WindowDecision, []TokenRotated, error) {
	cl, d, err := t.decideClose(ctx, which, env.Actor, env.Reason, env.Time())
	if err != nil {
		return WindowDecision{}, nil, err
	}
	rots, err := t.Apply(ctx, decide(cl, nil, []WindowDecision{d}), env)
	return d, rots, err
}

// closeWindows rotates the tokens of the closing windows (with the kinds in due, for the schedule: one
// rotation per kind) and records the rotations, the close entries and extra in one ledger write. A failed
// rotation records the failure and leaves the windows open, so the next pass tries again.
func (t *Tokens) closeWindows(ctx context.Context, cl swarm.Cluster, ds []WindowDecision, extra []swarm.Entry, scheduleWhy string, env operator.TaskEnv,
	due ...string) ([]TokenRotated, error) {
	at := env.Time()
	kinds := append([]string(nil), due...)
	winOf := map[string]WindowDecision{}
	var whys []string
	for _, d := range ds {
		if !d.Close {
			continue
		}
		if d.Rotate {
			winOf[d.Window.Kind] = d
			if !contains(kinds, d.Window.Kind) {
				kinds = append(kinds, d.Window.Kind)
			}
		}
		whys = append(whys, d.Why)
	}
	sort.SliceStable(kinds, func(i, j int) bool { return kinds[i] == swarm.TokenWorker && kinds[j] != swarm.TokenWorker })
	record := append([]swarm.Entry(nil), extra...)
	var rots []TokenRotated
	var rotErr error
	if len(kinds) > 0 {
		renv := env
		if renv.Reason == "" || len(winOf) > 0 {
			parts := whys
			if scheduleWhy != "" {
				parts = append([]string{scheduleWhy}, parts...)
			}
			if env.Reason != "" && len(winOf) > 0 && !strings.Contains(strings.Join(parts, "; "), env.Reason) {
				parts = append(parts, env.Reason)
			}
			renv.Reason = strings.Join(parts, "; ")
		}
		var rotated []swarm.Entry
		rots, rotated, rotErr = t.rotate(ctx, kinds, renv)
		crashpoint.At("join-window.after-rotate") // rotated; neither the rotation nor the close recorded
		for i := range rotated {
			for k, d := range winOf {
				if rotated[i].Kind == TokenLedgerKind(k) {
					rotated[i].Details[DetailWindow] = d.Window.ID
				}
			}
		}
		record = append(record, rotated...)
	}
	if rotErr == nil {
		for _, d := range ds {
			if !d.Close {
				continue
			}
			record = append(record, swarm.Entry{Kind: swarm.KindJoinWindow, At: at, Actor: env.Actor, Reason: d.Why, Result: swarm.ResultOK,
				Details: map[string]string{DetailWindow: d.Window.ID, DetailWindowToken: d.Window.Kind, DetailWindowAction: windowActionClose,
					DetailClosedBy: d.By, DetailWindowJoined: strconv.Itoa(d.Window.Joined), operator.DetailSwarmID: cl.ID}})
			env.Logger().Info("closed join window", "window", d.Window.ID, "kind", d.Window.Kind, "closed_by", d.By, "joined", d.Window.Joined, "rotated", d.Rotate)
		}
	}
	if err := operator.Record(ctx, t.Ledger, record...); err != nil {
		if rotErr != nil {
			env.Logger().Warn("recording the failed rotation in the ledger failed", "err", err)
			return rots, rotErr
		}
		if len(kinds) > 0 {
			return rots, fmt.Errorf("the join tokens were rotated, but recording it in the ledger failed: %w (the next pass records the new tokens instead of rotating again)", err)
		}
		return rots, fmt.Errorf("recording the join windows' close: %w", err)
	}
	crashpoint.At("join-window.after-close") // rotated and recorded; the new token not published
	if rotErr != nil {
		return rots, rotErr
	}
	if len(kinds) > 0 {
		return rots, t.publishAfterRotation(ctx, env)
	}
	return rots, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
