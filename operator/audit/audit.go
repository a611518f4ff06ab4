package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/guard"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/swarm"
)

// Record is one structured audit record: logged at info (message "audit") and sent to the webhooks
// that subscribe to its event. It never holds a secret value: tokens and keys appear only as fingerprints.
type Record struct {
	// ID is unique per record; webhooks receive it as X-Swarmguard-Delivery too, to drop duplicates.
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	// Event is one of AuditEvents.
	Event string `json:"event"`
	// Kind is the ledger kind of an action (join-token-worker, unlock-key, ca, secret, ...) or the loop of a
	// reconcile_failed.
	Kind   string `json:"kind,omitempty"`
	Actor  string `json:"actor"`
	Reason string `json:"reason,omitempty"`
	// Result: ok, failed, adopted (actions); ok or failed otherwise.
	Result string `json:"result"`
	// Fingerprints are sha256 fingerprints of credentials involved (old and new token, key, certificate).
	Fingerprints map[string]string `json:"fingerprints,omitempty"`
	// Details are other non-secret facts of the action (versions, names, counts).
	Details map[string]string `json:"details,omitempty"`
	// DurationSeconds is the length of the pass or action that produced the record.
	DurationSeconds float64 `json:"duration_seconds"`
	Node            string  `json:"node,omitempty"`
	Error           string  `json:"error,omitempty"`
}

// LogValue lets a record be logged as a group of its fields.
func (r Record) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", r.ID), slog.String("event", r.Event), slog.String("kind", r.Kind),
		slog.String("actor", r.Actor), slog.String("reason", r.Reason), slog.String("result", r.Result),
		slog.Float64("duration_seconds", r.DurationSeconds),
	}
	if len(r.Fingerprints) > 0 {
		attrs = append(attrs, slog.Any("fingerprints", r.Fingerprints))
	}
	if len(r.Details) > 0 {
		attrs = append(attrs, slog.Any("details", r.Details))
	}
	if r.Node != "" {
		attrs = append(attrs, slog.String("node", r.Node))
	}
	if r.Error != "" {
		attrs = append(attrs, slog.String("error", r.Error))
	}
	return slog.GroupValue(attrs...)
}

// FromEntry turns a ledger entry into an action record. Details keys naming a fingerprint go to
// Fingerprints; the ledger holds no secret values, so nothing else needs filtering.
func FromEntry(e swarm.Entry, d time.Duration) Record {
	r := Record{Time: e.At, Event: config.EventAction, Kind: e.Kind, Actor: e.Actor, Reason: e.Reason, Result: e.Result,
		DurationSeconds: d.Seconds()}
	for k, v := range e.Details {
		if strings.Contains(k, "fingerprint") || strings.HasSuffix(k, "_fp") {
			if r.Fingerprints == nil {
				r.Fingerprints = map[string]string{}
			}
			r.Fingerprints[k] = v
			continue
		}
		if r.Details == nil {
			r.Details = map[string]string{}
		}
		r.Details[k] = v
	}
	return r
}

type auditKey struct{}

type actionAudit struct {
	aud   *Auditor
	start time.Time
}

// With returns ctx carrying the auditor that records the actions done under it (Action, Record),
// and the start of the pass or command, the duration of an action recorded by Record. The controller gives it
// to every pass, the CLI to every action it runs under the lease.
func With(ctx context.Context, a *Auditor) context.Context {
	return context.WithValue(ctx, auditKey{}, actionAudit{aud: a, start: time.Now()})
}

func ActionDuration(ctx context.Context) time.Duration {
	if aa, ok := ctx.Value(auditKey{}).(actionAudit); ok {
		return time.Since(aa.start)
	}
	return 0
}

// Action records one action, now, with its own duration d: the ledger entry it made (or would have
// made) becomes an audit record on the log and the webhooks. Without an auditor in ctx it does nothing.
func Action(ctx context.Context, e swarm.Entry, d time.Duration) {
	aa, ok := ctx.Value(auditKey{}).(actionAudit)
	if !ok || aa.aud == nil {
		return
	}
	aa.aud.Record(FromEntry(e, d))
}

// WebhookTarget is one webhook: notify.webhooks[] with its signing key read by cmd.
type WebhookTarget struct {
	URL     string
	Events  []string // empty: every event
	Key     SigningKey
	Timeout time.Duration
	// Index is its place in notify.webhooks, for messages that name the key to fix.
	Index int
}

// Redacted is key material that prints as REDACTED everywhere: fmt, slog, JSON and text encoding.
type Redacted struct{ b []byte }

// Empty says whether nothing is set.
// NewRedacted holds a copy of b.
func NewRedacted(b []byte) Redacted { return Redacted{b: bytes.Clone(b)} }

// ConstantTimeEqual says whether b is the value held, in constant time.
func (s Redacted) ConstantTimeEqual(b []byte) bool { return subtle.ConstantTimeCompare(b, s.b) == 1 }

func (s Redacted) Empty() bool { return len(s.b) == 0 }

func (s Redacted) String() string               { return "REDACTED" }
func (s Redacted) GoString() string             { return "REDACTED" }
func (s Redacted) LogValue() slog.Value         { return slog.StringValue("REDACTED") }
func (s Redacted) MarshalText() ([]byte, error) { return []byte("REDACTED"), nil }
func (s Redacted) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, "REDACTED") }

// SigningKey is a webhook's HMAC-SHA256 key. It prints as REDACTED everywhere; Empty means the webhook has
// no key (it is then sent unsigned).
type SigningKey struct{ Redacted }

// NewSigningKey wraps key bytes (trailing newlines of a key file are the caller's to trim).
func NewSigningKey(b []byte) SigningKey { return SigningKey{NewRedacted(b)} }

// Sign returns the signature header value for a delivery sent at timestamp (the X-Swarmguard-Timestamp
// value, Unix seconds as decimal text): "sha256=" and the hex HMAC-SHA256 of timestamp, ".", body. The
// timestamp is signed so that a captured delivery cannot be replayed later than the receiver's window.
func (k SigningKey) Sign(timestamp string, body []byte) string {
	m := hmac.New(sha256.New, k.b)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Webhook HTTP headers.
const (
	HeaderSignature = "X-Swarmguard-Signature-256"
	HeaderTimestamp = "X-Swarmguard-Timestamp"
	HeaderEvent     = "X-Swarmguard-Event"
	HeaderDelivery  = "X-Swarmguard-Delivery"
)

// WebhookReplayWindow is how far from its own clock a receiver should accept X-Swarmguard-Timestamp (the
// verification examples of docs/operations.md use it). Each attempt is signed afresh, so a retry is never stale; within
// the window, duplicates are dropped by X-Swarmguard-Delivery.
const WebhookReplayWindow = 5 * time.Minute

// Webhook delivery tunables.
const (
	// webhookAttempts: one try and four retries, about 15 s of backoff in all; a receiver down longer
	// misses the record (the log and the ledger still have it).
	webhookAttempts = 5
	webhookBackoff  = time.Second
	webhookMaxDelay = 30 * time.Second
	// webhookQueue bounds the records waiting for one webhook; when it is full new ones are dropped with a
	// warning rather than slowing the controller down.
	webhookQueue = 256
)

// Auditor writes audit records: one log line each, and a delivery to each subscribed webhook.
type Auditor struct {
	log   *slog.Logger
	hooks []*webhook
	now   func() time.Time
	wg    sync.WaitGroup
	stop  context.CancelFunc
	ctx   context.Context

	mu     sync.Mutex
	closed bool
}

// New starts the webhook senders. Close stops them.
func New(ctx context.Context, log *slog.Logger, targets []WebhookTarget) *Auditor {
	ctx, cancel := context.WithCancel(ctx)
	a := &Auditor{log: log.With("component", "audit"), now: time.Now, ctx: ctx, stop: cancel}
	for _, t := range targets {
		h := &webhook{index: t.Index, target: t, queue: make(chan delivery, webhookQueue), log: a.log.With("webhook", t.Index),
			client: webhookClient(t.Timeout), backoff: webhookBackoff, now: a.now}
		a.hooks = append(a.hooks, h)
		a.wg.Add(1)
		go func() { defer a.wg.Done(); h.run(ctx) }()
	}
	return a
}

// Record logs r and queues it for the webhooks subscribed to its event. ID and Time are filled in when empty.
func (a *Auditor) Record(r Record) {
	if a == nil {
		return
	}
	if r.ID == "" {
		r.ID = newRecordID()
	}
	if r.Time.IsZero() {
		r.Time = a.now()
	}
	r.Time = r.Time.UTC()
	a.log.Info("audit", "record", r)
	if len(a.hooks) == 0 {
		return
	}
	body, err := json.Marshal(r)
	if err != nil {
		a.log.Warn("audit record not serialisable", "err", err) // cannot happen with strings and numbers
		return
	}
	// Sends happen under the lock Close takes before closing the queues (the sends never block), so a
	// record racing Close is either queued or dropped, never sent on a closed channel.
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	for _, h := range a.hooks {
		if !h.wants(r.Event) {
			continue
		}
		select {
		case h.queue <- delivery{id: r.ID, event: r.Event, body: body}:
		default:
			h.log.Warn("webhook queue full, record dropped", "record_id", r.ID, "event", r.Event)
		}
	}
}

// Close stops accepting records and waits for queued deliveries until ctx ends, then abandons the rest.
func (a *Auditor) Close(ctx context.Context) {
	if a == nil {
		return
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	for _, h := range a.hooks {
		close(h.queue)
	}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		a.stop()
		<-done
	}
	a.stop()
}

// webhookClient posts deliveries: certificates always verified (TLS 1.2 at least; there is no setting to
// skip it), no redirect followed (a 307/308 would re-post the signed record to wherever Location says; the
// 3xx is reported instead), proxies as the environment says (HTTPS_PROXY, NO_PROXY).
func webhookClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func newRecordID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type delivery struct {
	id, event string
	body      []byte
}

type webhook struct {
	index   int
	target  WebhookTarget
	queue   chan delivery
	log     *slog.Logger
	client  *http.Client
	backoff time.Duration
	now     func() time.Time
}

func (h *webhook) wants(event string) bool {
	if len(h.target.Events) == 0 {
		return true
	}
	for _, e := range h.target.Events {
		if e == event || e == "*" {
			return true
		}
	}
	return false
}

func (h *webhook) run(ctx context.Context) {
	for d := range h.queue {
		var err error
		if perr := guard.Do("webhook delivery", func() { err = h.deliver(ctx, d) }); perr != nil {
			err = perr // one record lost to a bug; the sender (and the process) go on
		}
		if err != nil {
			h.log.Warn("webhook delivery failed, record dropped", "record_id", d.id, "event", d.event, "err", err)
		}
	}
}

// deliver posts one record, retrying transport errors, 408, 429 and 5xx with exponential backoff and jitter.
func (h *webhook) deliver(ctx context.Context, d delivery) error {
	var lastErr error
	for attempt := 0; attempt < webhookAttempts; attempt++ {
		if attempt > 0 {
			delay := min(h.backoff<<(attempt-1), webhookMaxDelay)
			delay = delay/2 + time.Duration(mrand.Int64N(int64(delay/2)+1))
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("gave up at shutdown: %w", lastErr)
			case <-t.C:
			}
		}
		retry, err := h.post(ctx, d)
		if err == nil {
			return nil
		}
		lastErr = err
		if !retry {
			return err
		}
	}
	return fmt.Errorf("after %d attempts: %w", webhookAttempts, lastErr)
}

func (h *webhook) post(ctx context.Context, d delivery) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.target.URL, bytes.NewReader(d.body))
	if err != nil {
		return false, fmt.Errorf("building request: %w", redactURLErr(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "swarmguard")
	req.Header.Set(HeaderEvent, d.event)
	req.Header.Set(HeaderDelivery, d.id)
	ts := strconv.FormatInt(h.now().Unix(), 10)
	req.Header.Set(HeaderTimestamp, ts)
	if !h.target.Key.Empty() {
		req.Header.Set(HeaderSignature, h.target.Key.Sign(ts, d.body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return true, redactURLErr(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return false, fmt.Errorf("receiver answered %s; redirects are not followed (set notify.webhooks[%d].url to the address it redirects to)", resp.Status, h.index)
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return true, fmt.Errorf("receiver answered %s", resp.Status)
	default:
		return false, fmt.Errorf("receiver answered %s (not retried: fix the receiver or notify.webhooks[%d])", resp.Status, h.index)
	}
}

// redactURLErr drops the URL from a *url.Error: a webhook URL may carry a token (chat webhooks do).
func redactURLErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
