package operator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/guard"
	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/swarm"
)

// LeaseStore is the compare-and-swap store the lease lives in: one swarm config object whose labels carry
// the holder and whose version is the CAS token. *swarm.Client satisfies it.
type LeaseStore interface {
	ConfigByName(ctx context.Context, name string) (swarm.ConfigObject, error)
	CreateConfig(ctx context.Context, name string, labels map[string]string, body string) (swarm.ConfigObject, error)
	UpdateConfigLabels(ctx context.Context, obj swarm.ConfigObject, labels map[string]string) error
}

var _ LeaseStore = (*swarm.Client)(nil)

// Labels of the lease object. Only the holder writes holder, seq, ttl, actor, what, since and renewed; a
// waiting CLI writes the request labels; everything else is left as found.
const (
	leaseLabelSchema   = "swarmguard.lease.schema"
	leaseLabelHolder   = "swarmguard.lease.holder"  // "<node ID>/<instance ID>", "" when released
	leaseLabelSeq      = "swarmguard.lease.seq"     // bumped at every take, renewal, hand-over and release
	leaseLabelTTL      = "swarmguard.lease.ttl"     // the holder's TTL: observers judge expiry with it
	leaseLabelActor    = "swarmguard.lease.actor"   // operator:<node ID> or cli:user@host
	leaseLabelWhat     = "swarmguard.lease.what"    // controller, run --once, rotate join-token worker, ...
	leaseLabelSince    = "swarmguard.lease.since"   // holder's clock, for people only
	leaseLabelRenewed  = "swarmguard.lease.renewed" // holder's clock, for people only
	leaseLabelReleased = "swarmguard.lease.released"
	leaseLabelRequest  = "swarmguard.lease.request" // holder ID of a CLI waiting for a hand-over
	leaseLabelReqActor = "swarmguard.lease.request.actor"
	leaseLabelReqWhat  = "swarmguard.lease.request.what"
	leaseLabelReqTTL   = "swarmguard.lease.request.ttl"
	// leaseLabelReqRenewed is rewritten by a waiting CLI every third of its TTL (its clock, for people): a
	// request unchanged for longer than its TTL is stale, its CLI gone, and is never handed the lease.
	leaseLabelReqRenewed = "swarmguard.lease.request.renewed"

	leaseSchema = "1"
	leaseBody   = "swarmguard lease: the holder is in this object's labels; do not edit them by hand.\n"
)

// Lease roles.
const (
	RoleUnknown = "unknown" // the lease has not been read yet
	RoleHolder  = "holder"
	RoleStandby = "standby"
)

// Timing of the lease, as fractions of its TTL.
const (
	// renewFraction: the holder renews every third of the TTL, so two renewals may fail before it lapses.
	renewFraction = 3
	// observeFraction: standbys read the lease every sixth of the TTL, so a takeover comes at most a sixth
	// of the TTL after the expiry they judge.
	observeFraction = 6
	// maxObserveInterval caps a standby's read interval whatever the TTL. A takeover comes up to two read
	// intervals after the holder's last renewal plus the TTL (one to see the last renewal, one to see the
	// expiry); with the default 30 s TTL a sixth would be 5 s each, too much for "TTL + 10 s" once a raft
	// re-election also delays the write. One small read every 2 s per replica is cheap.
	maxObserveInterval = 2 * time.Second
	// validityMargin: the holder stops acting this fraction of the TTL before observers can judge it
	// expired, to absorb clock-rate differences between nodes.
	validityMargin = 20
	// acquirePollMax bounds the poll interval of a CLI waiting for the lease.
	acquirePollMax = time.Second
	// checkAttempts bounds Check's re-read-and-retry when a CAS loses to a request label write.
	checkAttempts = 3
)

// ErrLeaseLost is returned by Check when this process no longer holds the lease.
var ErrLeaseLost = errors.New("lease lost: another replica or a CLI user may be acting")

// LeaseOptions configure a Lease.
type LeaseOptions struct {
	// Name is the config object holding the lease (lease.name).
	Name string
	// TTL: a holder not seen renewing for this long, by an observer's own clock, has lost the lease.
	TTL time.Duration
	// Node is this process's swarm node ID; Instance tells processes on one node apart (random when empty).
	Node, Instance string
	// Actor and What describe the holder for people reading the lease (status, the error of a waiting CLI).
	Actor, What string
	// Request: when the lease is held by someone else, ask the holder to hand it over (CLI rotate and
	// run --once). A controller never requests; it waits for expiry or release.
	Request bool
	// Yield is asked by a holding controller before it hands the lease to a requester. It returns true when
	// no pass runs and none will start until resume is called.
	Yield func() (resume func(), ok bool)
	// OnChange is called (without locks held) when the role or the holder changes.
	OnChange func(LeaseStatus)
	Now      func() time.Time
	Log      *slog.Logger
}

// LeaseStatus is what this process knows of the lease.
type LeaseStatus struct {
	Role        string // holder, standby or unknown
	Self        string // this process's holder ID
	Holder      string // the holder's ID, "" when released or unknown
	HolderNode  string
	HolderActor string
	HolderWhat  string
	// Seq is the lease's sequence number as last read: every take, renewal, hand-over and release bumps it.
	Seq string
	// Expired: the holder has not renewed within its TTL by this observer's clock.
	Expired bool
	// SeenFor is how long the holder's last renewal has been unchanged, by this observer's clock.
	SeenFor time.Duration
	// Err is the last failure to read or write the lease ("" when the last attempt worked); Cause is its
	// cause class, what /readyz shows.
	Err, Cause string
}

// Lease is the single-actor lease among replicas and CLI users (DESIGN.md decision 2), in its own config
// object. It is taken and renewed only by compare-and-swap, and judged expired by each observer's own clock
// from when it last saw the holder's record change, never by comparing clocks across nodes.
type Lease struct {
	store LeaseStore
	opts  LeaseOptions
	id    string

	op sync.Mutex // serialises this process's reads and writes of the lease

	mu         sync.Mutex
	holding    bool
	validUntil time.Time // by this process's clock: act only before it
	mySeq      uint64
	seenKey    string    // holder and seq as last read
	seenAt     time.Time // when seenKey last changed, by this process's clock
	seenTTL    time.Duration
	reqKey     string // a pending request (requester and its renewal) as last read
	reqSeenAt  time.Time
	// reqWritten is when this process (a CLI) last wrote its request; it renews it every third of its TTL.
	reqWritten time.Time
	// created is when this process created the lease object, while it waits out a full TTL before acting
	// on it: the object may have been deleted under a holder that has not noticed yet and acts until its
	// own validity (less than a TTL after its last renewal) ends. Zero otherwise.
	created time.Time
	last    LeaseStatus
}

// NewLease returns a lease that has not yet been read.
func NewLease(store LeaseStore, opts LeaseOptions) *Lease {
	if opts.Instance == "" {
		opts.Instance = NewInstanceID()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.TTL <= 0 {
		opts.TTL = 30 * time.Second
	}
	id := opts.Node + "/" + opts.Instance
	return &Lease{store: store, opts: opts, id: id, last: LeaseStatus{Role: RoleUnknown, Self: id}}
}

// NewInstanceID returns a random per-process ID (8 bytes, hex).
func NewInstanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// ID is this process's holder ID: node ID and instance ID.
func (l *Lease) ID() string { return l.id }

// TTL is this process's TTL.
func (l *Lease) TTL() time.Duration { return l.opts.TTL }

// Holding says whether this process holds the lease now and may act: it took or renewed it, and less than
// its TTL (less a margin) has passed since that write began.
func (l *Lease) Holding() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holdingLocked(l.opts.Now())
}

func (l *Lease) holdingLocked(now time.Time) bool {
	return l.holding && now.Before(l.validUntil)
}

// Status is what this process last knew of the lease.
func (l *Lease) Status() LeaseStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.last
	now := l.opts.Now()
	if st.Role == RoleHolder && !l.holdingLocked(now) {
		st.Role = RoleStandby
	}
	if !l.seenAt.IsZero() {
		st.SeenFor = now.Sub(l.seenAt)
	}
	return st
}

// Interval is how long to wait before the next Tick: a third of the TTL (with jitter) while holding, a sixth
// (at most maxObserveInterval) while standing by.
func (l *Lease) Interval() time.Duration {
	base := min(l.opts.TTL/observeFraction, maxObserveInterval)
	if l.Holding() {
		base = l.opts.TTL / renewFraction
	}
	// Jitter within the last fifth of the interval, so replicas started together spread out.
	return base - time.Duration(mrand.Int64N(int64(base/5)+1))
}

// Run ticks the lease until ctx ends. It does not release the lease: call Release on shutdown.
func (l *Lease) Run(ctx context.Context) {
	for {
		// Failures are logged and kept in Status. A panic (a bug in a store call) is one failed tick: the
		// next one reads again, and a holder that cannot renew lapses as when the engine is unreachable.
		if err := guard.Do("lease tick", func() { _, _ = l.Tick(ctx) }); err != nil {
			var pe *guard.PanicError
			errors.As(err, &pe)
			l.opts.Log.Error("lease tick panicked", "lease", l.opts.Name, "panic", pe.Kind, "where", pe.Where, "stack", string(pe.Stack))
		}
		t := time.NewTimer(l.Interval())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// opTimeout bounds one read or write of the lease: a write that hangs longer than half the TTL would leave
// too little of it to act in anyway.
func (l *Lease) opTimeout() time.Duration { return max(l.opts.TTL/2, time.Second) }

// Tick reads the lease once and does what that calls for: renew it when held, take it when it is free,
// released or expired (by this observer's clock), hand it to a waiting CLI when the holder is idle, or ask
// for it (Request). It returns the resulting status, and the error of a failed read or write.
func (l *Lease) Tick(ctx context.Context) (LeaseStatus, error) {
	l.op.Lock()
	defer l.op.Unlock()
	ctx, cancel := context.WithTimeout(ctx, l.opTimeout())
	defer cancel()
	err := l.tick(ctx)
	l.finish(err)
	return l.Status(), err
}

func (l *Lease) tick(ctx context.Context) error {
	start := l.opts.Now()
	obj, err := l.store.ConfigByName(ctx, l.opts.Name)
	if errors.Is(err, swarm.ErrNotFound) {
		l.gone()
		return l.create(ctx, start)
	}
	// An observer's expiry clock starts when the read returns, not when it was sent: a read that waited
	// (a raft re-election, a busy engine) may show a renewal written while it waited.
	read := l.opts.Now()
	if err != nil {
		l.opts.Log.Debug("lease read failed", "lease", l.opts.Name, "took", read.Sub(start), "err", err)
		return fmt.Errorf("reading lease %q: %w", l.opts.Name, err)
	}
	l.observe(obj, read)
	expired := l.expired(obj, read)
	l.opts.Log.Debug("lease read", "lease", l.opts.Name, "took", read.Sub(start), "holder", obj.Labels[leaseLabelHolder],
		"seq", obj.Labels[leaseLabelSeq], "unchanged_for", l.Status().SeenFor, "expired", expired)
	holder := obj.Labels[leaseLabelHolder]
	switch {
	case holder == l.id:
		if req := obj.Labels[leaseLabelRequest]; req != "" && req != l.id && l.opts.Yield != nil && l.requestPending(obj, start) {
			if resume, ok := l.opts.Yield(); ok {
				defer resume()
				return l.handOver(ctx, obj)
			}
		}
		return l.write(ctx, obj, start, l.dropStaleRequest(obj, start, l.holderLabels(obj.Labels, start, false)))
	case holder == "" || expired:
		if holder == "" && !l.opts.Request && l.requestPending(obj, start) {
			// A CLI is waiting for this released lease; let it take it first.
			return nil
		}
		return l.write(ctx, obj, start, l.dropStaleRequest(obj, start, l.holderLabels(obj.Labels, start, true)))
	default:
		if l.opts.Request && (obj.Labels[leaseLabelRequest] != l.id || start.Sub(l.reqWritten) >= l.opts.TTL/renewFraction) {
			labels := copyLabels(obj.Labels)
			labels[leaseLabelRequest] = l.id
			labels[leaseLabelReqActor] = l.opts.Actor
			labels[leaseLabelReqWhat] = l.opts.What
			labels[leaseLabelReqTTL] = l.opts.TTL.String()
			labels[leaseLabelReqRenewed] = start.UTC().Format(time.RFC3339Nano)
			err := l.store.UpdateConfigLabels(ctx, obj, labels)
			if err != nil && !errors.Is(err, swarm.ErrConflict) {
				return fmt.Errorf("asking for lease %q: %w", l.opts.Name, err)
			}
			if err == nil {
				l.reqWritten = start
			}
		}
		return nil
	}
}

// dropStaleRequest clears from labels (the holder's next record) a request seen unchanged for longer than
// its TTL: its CLI renews it every third of that while it waits, so it is gone. Handing the lease to it
// would leave the swarm without an actor until the dead requester's TTL ran out.
func (l *Lease) dropStaleRequest(obj swarm.ConfigObject, now time.Time, labels map[string]string) map[string]string {
	if req := obj.Labels[leaseLabelRequest]; req != "" && req != l.id && !l.requestPending(obj, now) {
		l.opts.Log.Info("cleared a stale lease request", "lease", l.opts.Name, "requester", req, "requester_actor", obj.Labels[leaseLabelReqActor])
		clearRequest(labels)
	}
	return labels
}

// observe records what was read: when the holder's record (holder and seq) changes, this observer's expiry
// clock starts again.
func (l *Lease) observe(obj swarm.ConfigObject, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := obj.Labels[leaseLabelHolder] + "#" + obj.Labels[leaseLabelSeq]
	if key != l.seenKey || l.seenAt.IsZero() {
		l.seenKey, l.seenAt = key, now
	}
	l.seenTTL = leaseTTL(obj.Labels[leaseLabelTTL], l.opts.TTL)
	req := obj.Labels[leaseLabelRequest]
	if k := req + "#" + obj.Labels[leaseLabelReqRenewed]; k != l.reqKey {
		l.reqKey, l.reqSeenAt = k, now
	}
	holder := obj.Labels[leaseLabelHolder]
	l.last.Holder = holder
	l.last.HolderNode, _, _ = strings.Cut(holder, "/")
	l.last.HolderActor = obj.Labels[leaseLabelActor]
	l.last.HolderWhat = obj.Labels[leaseLabelWhat]
	l.last.Seq = obj.Labels[leaseLabelSeq]
	if holder != l.id {
		l.holding = false // someone else's record: whatever we believed, we do not hold it
		l.created = time.Time{}
	}
}

// expired judges, by this observer's clock alone, whether the holder failed to renew within its TTL.
func (l *Lease) expired(obj swarm.ConfigObject, now time.Time) bool {
	ttl := leaseTTL(obj.Labels[leaseLabelTTL], l.opts.TTL)
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Sub(l.seenAt) >= ttl
}

// requestPending: a CLI asked for the lease and its request has been seen unchanged for less than its TTL (a
// waiting CLI renews it every third of that; one that gave up or died neither blocks the controllers for
// longer nor is ever handed the lease).
func (l *Lease) requestPending(obj swarm.ConfigObject, now time.Time) bool {
	if obj.Labels[leaseLabelRequest] == "" {
		return false
	}
	ttl := leaseTTL(obj.Labels[leaseLabelReqTTL], l.opts.TTL)
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Sub(l.reqSeenAt) < ttl
}

// leaseTTL reads the holder's TTL. An unreadable one counts as the larger of twice ours and 5 minutes:
// judging a holder expired too early is the one thing that must not happen.
func leaseTTL(s string, own time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return max(2*own, 5*time.Minute)
}

func (l *Lease) holderLabels(old map[string]string, now time.Time, take bool) map[string]string {
	labels := copyLabels(old)
	seq, _ := strconv.ParseUint(old[leaseLabelSeq], 10, 64)
	labels[leaseLabelSchema] = leaseSchema
	labels[leaseLabelHolder] = l.id
	labels[leaseLabelSeq] = strconv.FormatUint(seq+1, 10)
	labels[leaseLabelTTL] = l.opts.TTL.String()
	labels[leaseLabelActor] = l.opts.Actor
	labels[leaseLabelWhat] = l.opts.What
	labels[leaseLabelRenewed] = now.UTC().Format(time.RFC3339Nano)
	if take || labels[leaseLabelSince] == "" {
		labels[leaseLabelSince] = labels[leaseLabelRenewed]
	}
	delete(labels, leaseLabelReleased)
	if labels[leaseLabelRequest] == l.id {
		clearRequest(labels)
	}
	return labels
}

func clearRequest(labels map[string]string) {
	delete(labels, leaseLabelRequest)
	delete(labels, leaseLabelReqActor)
	delete(labels, leaseLabelReqWhat)
	delete(labels, leaseLabelReqTTL)
	delete(labels, leaseLabelReqRenewed)
}

func copyLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+8)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// gone is what an absent lease object means to this process: whatever it believed, it holds nothing from
// this moment (the object was deleted, by a person or a cleanup); it stops acting at once.
func (l *Lease) gone() {
	l.mu.Lock()
	was := l.holding
	l.holding = false
	l.mu.Unlock()
	if was {
		l.opts.Log.Warn("lease object is gone: stopped acting", "lease", l.opts.Name, "self", l.id)
	}
}

// create makes the lease object with this process as holder. It acts on it only after a full TTL (see
// Lease.created): a holder of a deleted lease object may still be acting until then. Losing the race to
// another creator is no error: the next tick reads theirs.
//
// The wait starts before the create is sent: a create that failed may still have made the object (its
// answer, or the inspect after it, was lost), and the next tick then finds this process's own record.
func (l *Lease) create(ctx context.Context, start time.Time) error {
	labels := l.holderLabels(map[string]string{}, start, true)
	l.mu.Lock()
	l.created = start // cleared by observe if the object turns out to be someone else's
	l.mu.Unlock()
	obj, err := l.store.CreateConfig(ctx, l.opts.Name, labels, leaseBody)
	if errors.Is(err, swarm.ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating lease %q: %w", l.opts.Name, err)
	}
	l.observe(obj, start)
	l.held(start, labels)
	l.opts.Log.Info("created the lease; acting on it after a full TTL", "lease", l.opts.Name, "self", l.id, "ttl", l.opts.TTL)
	return nil
}

// WaitingFresh says whether this process created the lease object and waits out its first TTL before acting.
func (l *Lease) WaitingFresh() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.created.IsZero()
}

// write puts this process's holder record with the version read. Success means we hold the lease until
// start+TTL (start: before the write, so never later than any observer's view of it). A lost CAS means
// someone else wrote first: we decide again at the next tick.
func (l *Lease) write(ctx context.Context, obj swarm.ConfigObject, start time.Time, labels map[string]string) error {
	err := l.store.UpdateConfigLabels(ctx, obj, labels)
	if errors.Is(err, swarm.ErrConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing lease %q: %w", l.opts.Name, err)
	}
	obj.Labels = labels
	l.observe(obj, l.opts.Now())
	l.held(start, labels)
	return nil
}

func (l *Lease) held(start time.Time, labels map[string]string) {
	seq, _ := strconv.ParseUint(labels[leaseLabelSeq], 10, 64)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mySeq = seq
	if !l.created.IsZero() {
		if start.Sub(l.created) < l.opts.TTL {
			return // our record, renewed, but not ours to act on before a full TTL since its creation
		}
		l.created = time.Time{}
	}
	l.holding = true
	l.validUntil = start.Add(l.opts.TTL - l.opts.TTL/validityMargin)
}

// handOver gives the lease to the CLI that asked for it, in one CAS write. The requester renews it with its
// own clock at its next poll.
func (l *Lease) handOver(ctx context.Context, obj swarm.ConfigObject) error {
	labels := copyLabels(obj.Labels)
	seq, _ := strconv.ParseUint(obj.Labels[leaseLabelSeq], 10, 64)
	now := l.opts.Now()
	req := obj.Labels[leaseLabelRequest]
	labels[leaseLabelHolder] = req
	labels[leaseLabelSeq] = strconv.FormatUint(seq+1, 10)
	labels[leaseLabelActor] = obj.Labels[leaseLabelReqActor]
	labels[leaseLabelWhat] = obj.Labels[leaseLabelReqWhat]
	labels[leaseLabelTTL] = leaseTTL(obj.Labels[leaseLabelReqTTL], l.opts.TTL).String()
	labels[leaseLabelSince] = now.UTC().Format(time.RFC3339Nano)
	labels[leaseLabelRenewed] = labels[leaseLabelSince]
	clearRequest(labels)
	// Stop acting before the write: from here on the requester may act.
	l.mu.Lock()
	l.holding = false
	l.mu.Unlock()
	err := l.store.UpdateConfigLabels(ctx, obj, labels)
	if errors.Is(err, swarm.ErrConflict) {
		return nil // our record is unchanged if the write lost; the next tick renews it
	}
	if err != nil {
		return fmt.Errorf("handing lease %q to %s: %w", l.opts.Name, req, err)
	}
	obj.Labels = labels
	l.observe(obj, now)
	l.opts.Log.Info("handed lease over", "lease", l.opts.Name, "to", req, "to_actor", labels[leaseLabelActor], "to_what", labels[leaseLabelWhat])
	return nil
}

// finish updates the status after a tick or check and reports role changes.
func (l *Lease) finish(err error) {
	l.mu.Lock()
	now := l.opts.Now()
	prev := l.last
	st := l.last
	st.Err, st.Cause = "", Cause(err)
	if err != nil {
		st.Err = err.Error()
	}
	switch {
	case l.holdingLocked(now):
		st.Role = RoleHolder
	case l.seenAt.IsZero():
		st.Role = RoleUnknown
	default:
		st.Role = RoleStandby
	}
	if l.holding && !l.holdingLocked(now) {
		l.holding = false // lapsed: not renewed in time (engine unreachable, or the write kept losing)
	}
	if !l.seenAt.IsZero() {
		st.Expired = st.Holder != "" && st.Holder != l.id && now.Sub(l.seenAt) >= l.seenTTL
	}
	l.last = st
	l.mu.Unlock()

	if prev.Role != st.Role || prev.Holder != st.Holder {
		l.opts.Log.Info("lease role changed", "role", st.Role, "holder", st.Holder, "holder_actor", st.HolderActor, "holder_what", st.HolderWhat, "lease", l.opts.Name, "self", l.id)
		if l.opts.OnChange != nil {
			l.opts.OnChange(st)
		}
	}
	if err != nil && prev.Err != st.Err {
		l.opts.Log.Warn("lease unreadable, will retry", "lease", l.opts.Name, "role", st.Role, "err", err)
	}
}

// Check re-checks, right before a mutating step, that this process still holds the lease: it renews it by
// CAS, so success also gives the step a whole TTL. It returns ErrLeaseLost (wrapped) when the lease is
// someone else's or lapsed, and a read or write error when the engine cannot say.
func (l *Lease) Check(ctx context.Context) error {
	l.op.Lock()
	defer l.op.Unlock()
	ctx, cancel := context.WithTimeout(ctx, l.opTimeout())
	defer cancel()
	err := l.check(ctx)
	l.finish(err)
	return err
}

func (l *Lease) check(ctx context.Context) error {
	for attempt := 0; attempt < checkAttempts; attempt++ {
		if !l.Holding() {
			return fmt.Errorf("lease %q: %w", l.opts.Name, ErrLeaseLost)
		}
		start := l.opts.Now()
		obj, err := l.store.ConfigByName(ctx, l.opts.Name)
		if errors.Is(err, swarm.ErrNotFound) {
			l.gone()
			return fmt.Errorf("lease %q: the object was deleted: %w", l.opts.Name, ErrLeaseLost)
		}
		if err != nil {
			return fmt.Errorf("re-checking lease %q: %w", l.opts.Name, err)
		}
		l.observe(obj, start)
		if obj.Labels[leaseLabelHolder] != l.id {
			return fmt.Errorf("lease %q is now held by %s: %w", l.opts.Name, obj.Labels[leaseLabelHolder], ErrLeaseLost)
		}
		labels := l.holderLabels(obj.Labels, start, false)
		err = l.store.UpdateConfigLabels(ctx, obj, labels)
		if errors.Is(err, swarm.ErrConflict) {
			continue // a request label was written in between, or we lost it: read again
		}
		if err != nil {
			return fmt.Errorf("re-checking lease %q: %w", l.opts.Name, err)
		}
		obj.Labels = labels
		l.observe(obj, l.opts.Now())
		l.held(start, labels)
		return nil
	}
	return fmt.Errorf("lease %q kept changing while re-checking it: %w", l.opts.Name, ErrLeaseLost)
}

// Release gives the lease up, so that another replica takes it at its next tick instead of after the TTL.
// A waiting CLI gets it directly. It does nothing when this process does not hold the lease.
func (l *Lease) Release(ctx context.Context) error {
	l.op.Lock()
	defer l.op.Unlock()
	ctx, cancel := context.WithTimeout(ctx, l.opTimeout())
	defer cancel()
	err := l.release(ctx)
	l.finish(err)
	return err
}

func (l *Lease) release(ctx context.Context) error {
	l.mu.Lock()
	l.holding = false       // act no more, whatever the write below does
	l.created = time.Time{} // a lease we created and never acted on is released like a held one
	l.mu.Unlock()
	for attempt := 0; attempt < checkAttempts; attempt++ {
		obj, err := l.store.ConfigByName(ctx, l.opts.Name)
		if errors.Is(err, swarm.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("releasing lease %q: %w", l.opts.Name, err)
		}
		l.observe(obj, l.opts.Now())
		if obj.Labels[leaseLabelHolder] != l.id {
			return nil
		}
		if req := obj.Labels[leaseLabelRequest]; req != "" && req != l.id && l.requestPending(obj, l.opts.Now()) {
			err = l.handOver(ctx, obj)
			if err == nil && l.Status().Holder != l.id {
				return nil
			}
			if err != nil {
				return err
			}
			continue
		}
		labels := l.dropStaleRequest(obj, l.opts.Now(), copyLabels(obj.Labels))
		seq, _ := strconv.ParseUint(obj.Labels[leaseLabelSeq], 10, 64)
		labels[leaseLabelHolder] = ""
		labels[leaseLabelSeq] = strconv.FormatUint(seq+1, 10)
		labels[leaseLabelReleased] = l.opts.Now().UTC().Format(time.RFC3339Nano) + " by " + l.id
		err = l.store.UpdateConfigLabels(ctx, obj, labels)
		if errors.Is(err, swarm.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("releasing lease %q: %w", l.opts.Name, err)
		}
		obj.Labels = labels
		l.observe(obj, l.opts.Now())
		l.opts.Log.Info("released lease", "lease", l.opts.Name, "self", l.id)
		return nil
	}
	return fmt.Errorf("releasing lease %q: it kept changing; it lapses after its TTL", l.opts.Name)
}

// HeldError says who holds the lease a CLI waited for in vain.
type HeldError struct {
	Lease  string
	Status LeaseStatus
	Waited time.Duration
}

func (e *HeldError) Error() string {
	st := e.Status
	who := st.Holder
	if st.HolderActor != "" {
		who += " (" + st.HolderActor
		if st.HolderWhat != "" {
			who += ", " + st.HolderWhat
		}
		who += ")"
	}
	msg := fmt.Sprintf("lease %q is held by %s on node %s; waited %s", e.Lease, who, st.HolderNode, e.Waited.Round(time.Second))
	if st.Err != "" {
		msg += "; last error: " + st.Err
	}
	return msg + " (a controller hands it over when its current step ends; retry later, or raise lease.wait)"
}

// Acquire takes the lease for a CLI action, asking the holder for it (LeaseOptions.Request) and waiting up to
// wait. It fails with a *HeldError saying who holds it. The caller must keep it (Run) and Release it.
func (l *Lease) Acquire(ctx context.Context, wait time.Duration) error {
	start := l.opts.Now()
	deadline := start.Add(wait)
	for {
		st, err := l.Tick(ctx)
		if l.Holding() {
			return nil
		}
		if l.WaitingFresh() {
			// We created the lease: it is ours after a full TTL whatever lease.wait says.
			deadline = maxTime(deadline, l.opts.Now().Add(l.opts.TTL/observeFraction+acquirePollMax))
		}
		if !l.opts.Now().Before(deadline) {
			l.withdraw(ctx)
			if err != nil && st.Holder == "" {
				return fmt.Errorf("taking lease %q: %w", l.opts.Name, err)
			}
			return &HeldError{Lease: l.opts.Name, Status: st, Waited: l.opts.Now().Sub(start)}
		}
		d := min(l.opts.TTL/observeFraction, acquirePollMax, deadline.Sub(l.opts.Now()))
		t := time.NewTimer(max(d, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			l.withdraw(context.WithoutCancel(ctx))
			return ctx.Err()
		case <-t.C:
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// withdraw clears this process's request, best effort, so that a holder does not hand the lease to a CLI
// that gave up.
func (l *Lease) withdraw(ctx context.Context) {
	l.op.Lock()
	defer l.op.Unlock()
	ctx, cancel := context.WithTimeout(ctx, l.opTimeout())
	defer cancel()
	obj, err := l.store.ConfigByName(ctx, l.opts.Name)
	if err != nil || obj.Labels[leaseLabelRequest] != l.id {
		return
	}
	labels := copyLabels(obj.Labels)
	clearRequest(labels)
	_ = l.store.UpdateConfigLabels(ctx, obj, labels) // best effort: a stale request lapses after its TTL
}

// LeaseInfo is the lease object as stored, for people (`swarmguard lease`). Times are the writers' clocks.
type LeaseInfo struct {
	Name      string `json:"name"`
	Exists    bool   `json:"exists"`
	Holder    string `json:"holder"` // "" when released
	Node      string `json:"node,omitempty"`
	Actor     string `json:"actor,omitempty"`
	What      string `json:"what,omitempty"`
	TTL       string `json:"ttl,omitempty"`
	Seq       string `json:"seq,omitempty"`
	Since     string `json:"since,omitempty"`
	Renewed   string `json:"renewed,omitempty"`
	Released  string `json:"released,omitempty"`
	Request   string `json:"request,omitempty"`
	ReqActor  string `json:"request_actor,omitempty"`
	Version   uint64 `json:"version"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

// ReadLease reads the lease object. A lease never taken is reported with Exists false.
func ReadLease(ctx context.Context, store LeaseStore, name string) (LeaseInfo, error) {
	obj, err := store.ConfigByName(ctx, name)
	if errors.Is(err, swarm.ErrNotFound) {
		return LeaseInfo{Name: name}, nil
	}
	if err != nil {
		return LeaseInfo{}, fmt.Errorf("reading lease %q: %w", name, err)
	}
	lb := obj.Labels
	info := LeaseInfo{Name: name, Exists: true, Holder: lb[leaseLabelHolder], Actor: lb[leaseLabelActor], What: lb[leaseLabelWhat],
		TTL: lb[leaseLabelTTL], Seq: lb[leaseLabelSeq], Since: lb[leaseLabelSince], Renewed: lb[leaseLabelRenewed],
		Released: lb[leaseLabelReleased], Request: lb[leaseLabelRequest], ReqActor: lb[leaseLabelReqActor], Version: obj.Version}
	info.Node, _, _ = strings.Cut(info.Holder, "/")
	if !obj.UpdatedAt.IsZero() {
		info.UpdatedAt = obj.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	return info, nil
}

// Fence returns a context for work done under the lease: it ends when parent ends or when this process's
// hold on the lease ends (lost, handed over, or lapsed because it could not be renewed in time). The hold is
// checked live at every Done and Err call, and every Engine API call derives its own context from it right
// before its request, so a process resumed after a pause longer than the TTL (SIGSTOP, a frozen VM) finds
// its context ended before it sends anything: the lease's fencing. Call cancel when the work is done.
func (l *Lease) Fence(parent context.Context) (context.Context, context.CancelFunc) {
	f := &fenceCtx{Context: parent, lease: l, done: make(chan struct{})}
	go f.watch()
	return f, func() { f.end(context.Canceled) }
}

type fenceCtx struct {
	context.Context // the parent: Value and Deadline
	lease           *Lease

	mu   sync.Mutex
	done chan struct{}
	err  error
}

func (f *fenceCtx) Done() <-chan struct{} {
	f.check()
	return f.done
}

func (f *fenceCtx) Err() error {
	f.check()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// check ends the context when the hold has ended. DeadlineExceeded is what a context reports when its time
// ran out, which is what happened: the lease's validity is this work's deadline.
func (f *fenceCtx) check() {
	if !f.lease.Holding() {
		f.end(context.DeadlineExceeded)
	}
}

func (f *fenceCtx) end(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
		close(f.done)
	}
}

// watch ends the context when the parent ends or the hold lapses, for those who wait on Done without calling
// it again.
func (f *fenceCtx) watch() {
	for {
		l := f.lease
		l.mu.Lock()
		wait := l.validUntil.Sub(l.opts.Now())
		l.mu.Unlock()
		// A hold can also end early (lost, handed over): look again at least every sixth of the TTL.
		t := time.NewTimer(min(max(wait, time.Millisecond), l.opts.TTL/observeFraction))
		select {
		case <-f.Context.Done():
			t.Stop()
			f.end(f.Context.Err())
			return
		case <-f.done:
			t.Stop()
			return
		case <-t.C:
			f.check()
		}
	}
}

// Guard is the lease's one guard over an action, carried in the action's TaskEnv: the controller's pass,
// `run --once`, every CLI action and the incident get it from the lease they hold (HoldLease, the runtime).
// Check re-checks, right before a mutating step, that the hold still stands (a stale holder must do
// nothing); Fence bounds work that runs on a context of its own (an undo after its caller's context ended)
// to the hold. *Lease is the real one.
type Guard interface {
	Check(ctx context.Context) error
	Fence(parent context.Context) (context.Context, context.CancelFunc)
}

var _ Guard = (*Lease)(nil)

// CheckOnly is a Guard made of a check alone: a dry run's refusal, a test's scripted lease. Its Fence
// bounds nothing beyond the parent; its Check is what refuses.
type CheckOnly func(ctx context.Context) error

// Check calls f.
func (f CheckOnly) Check(ctx context.Context) error { return f(ctx) }

// Fence is a plain cancellable child of parent.
func (f CheckOnly) Fence(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(parent)
}

// holdReleaseTimeout bounds the release of the lease after an action held with HoldLease, also when the
// action was interrupted.
const holdReleaseTimeout = 5 * time.Second

// HoldOptions say which lease HoldLease takes and how long it waits for it.
type HoldOptions struct {
	Store LeaseStore
	// Lease names the lease and describes the holder (Actor, What); Request is always set: the holder is
	// asked to hand it over.
	Lease LeaseOptions
	// Wait bounds the wait for a holder to hand the lease over (lease.wait).
	Wait time.Duration
	// Audit, when not nil, records each action done under the hold (audit.With); the caller closes it.
	Audit *audit.Auditor
}

// HoldLease holds the swarm-wide lease for one action (DESIGN.md decision 2): a person's rotate, remediate,
// join window, incident and `run --once` alike. It asks the holder to hand the lease over and waits up to
// o.Wait, failing with a *HeldError naming the holder; then it renews the lease while fn runs, gives fn a
// context that ends the moment the hold ends (Fence) and env with the hold as its Guard, and releases the
// lease when fn returns. An error fn returns after the hold was lost says so (ErrLeaseLost).
func HoldLease(ctx context.Context, o HoldOptions, env TaskEnv, fn func(ctx context.Context, env TaskEnv) error) error {
	opts := o.Lease
	opts.Request = true
	if opts.Log == nil {
		opts.Log = env.Logger()
	}
	l := NewLease(o.Store, opts)
	if err := l.Acquire(ctx, o.Wait); err != nil {
		return err
	}
	opts.Log.Debug("lease taken", "lease", opts.Name, "self", l.ID(), "what", opts.What)
	hctx, cancel := context.WithCancelCause(ctx)
	if o.Audit != nil {
		hctx = audit.With(hctx, o.Audit)
	}
	kept := make(chan struct{})
	go func() { defer close(kept); l.keep(hctx, cancel) }()
	fenced, fcancel := l.Fence(hctx) // ends the moment the hold ends, checked before every API call
	env.Guard = l
	err := fn(fenced, env)
	fcancel()
	if err != nil && !errors.Is(err, ErrLeaseLost) {
		// Say why the action stopped when it was the hold that ended (its context, a refused step).
		if cause := context.Cause(hctx); errors.Is(cause, ErrLeaseLost) {
			err = fmt.Errorf("%w (%w)", err, cause)
		} else if !l.Holding() && ctx.Err() == nil {
			err = fmt.Errorf("%w (lease %s: %w)", err, l.ID(), ErrLeaseLost)
		}
	}
	cancel(nil)
	<-kept

	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), holdReleaseTimeout)
	defer rcancel()
	if rerr := l.Release(rctx); rerr != nil {
		opts.Log.Warn("lease not released; it lapses after its TTL", "lease", opts.Name, "err", rerr)
	}
	return err
}

// keep renews the lease while ctx lasts and cancels ctx with ErrLeaseLost when the hold ends.
func (l *Lease) keep(ctx context.Context, cancel context.CancelCauseFunc) {
	for {
		t := time.NewTimer(l.Interval())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// A panic in a tick (a bug) is a failed renewal: the hold lapses as when the engine is unreachable.
		if err := guard.Do("lease renewal", func() { _, _ = l.Tick(ctx) }); err != nil {
			l.opts.Log.Error("lease renewal panicked", "lease", l.opts.Name, "err", err)
		}
		if !l.Holding() {
			cancel(fmt.Errorf("lease %s: %w", l.ID(), ErrLeaseLost))
			return
		}
	}
}
