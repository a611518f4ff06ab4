package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/swarm"
)

type received struct {
	body    []byte
	headers http.Header
}

// hookHandler records deliveries; status answers each request in turn (the last one repeats).
func hookHandler(status ...int) (http.Handler, func() []received, *atomic.Int32) {
	var mu sync.Mutex
	var got []received
	var calls atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		code := status[min(n, len(status)-1)]
		b, _ := io.ReadAll(r.Body)
		if code < 300 {
			mu.Lock()
			got = append(got, received{body: b, headers: r.Header.Clone()})
			mu.Unlock()
		}
		w.WriteHeader(code)
	})
	return h, func() []received { mu.Lock(); defer mu.Unlock(); return append([]received(nil), got...) }, &calls
}

// hookServer is hookHandler behind a real HTTP server on a loopback socket.
func hookServer(t *testing.T, status ...int) (*httptest.Server, func() []received, *atomic.Int32) {
	t.Helper()
	h, got, calls := hookHandler(status...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, got, calls
}

// handlerTransport hands the webhook client's requests straight to h, with no socket: a goroutine waiting on
// network I/O is never durably blocked, so a synctest bubble's clock would not advance past the retry
// backoff with a real server; in memory it does.
type handlerTransport struct{ h http.Handler }

func (tr handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	tr.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// TestWebhookSignedDelivery stays on real time: it is the end-to-end delivery over a real loopback socket
// (httptest server), which a synctest bubble cannot host. It waits on no timer: one delivery, no retry, and
// Close waits for it with no deadline.
func TestWebhookSignedDelivery(t *testing.T) {
	srv, got, _ := hookServer(t, 200)
	key := []byte("webhook-signing-key-0123456789abcdef")
	var logs syncBuffer
	a := New(t.Context(), slog.New(slog.NewJSONHandler(&logs, nil)), []WebhookTarget{{URL: srv.URL + "/hook", Key: NewSigningKey(key), Timeout: time.Second}})
	entry := swarm.Entry{Kind: swarm.KindJoinTokenWorker, At: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), Actor: "operator:n1",
		Reason: "scheduled: worker token older than 720h", Result: swarm.ResultOK,
		Details: map[string]string{"old_fingerprint": "aa11", "new_fingerprint": "bb22", "swarm_id": "s1"}}
	a.Record(FromEntry(entry, 40*time.Millisecond))
	a.Close(t.Context())

	g := got()
	if len(g) != 1 {
		t.Fatalf("deliveries = %d; want 1", len(g))
	}
	// The signature covers the timestamp and the body: timestamp + "." + body.
	ts := g[0].headers.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > WebhookReplayWindow {
		t.Fatalf("%s = %q; want the Unix time of the delivery", HeaderTimestamp, ts)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts + "."))
	m.Write(g[0].body)
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); g[0].headers.Get(HeaderSignature) != want {
		t.Fatalf("%s = %q; want %q (HMAC of timestamp.body)", HeaderSignature, g[0].headers.Get(HeaderSignature), want)
	}
	if g[0].headers.Get(HeaderEvent) != config.EventAction || g[0].headers.Get(HeaderDelivery) == "" {
		t.Fatalf("headers = %v; want event %s and a delivery ID", g[0].headers, config.EventAction)
	}
	var r Record
	if err := json.Unmarshal(g[0].body, &r); err != nil {
		t.Fatal(err)
	}
	if r.Event != config.EventAction || r.Kind != swarm.KindJoinTokenWorker || r.Actor != "operator:n1" || r.Result != "ok" ||
		r.Fingerprints["new_fingerprint"] != "bb22" || r.Details["swarm_id"] != "s1" || r.DurationSeconds != 0.04 || r.ID != g[0].headers.Get(HeaderDelivery) {
		t.Fatalf("payload = %+v; want the entry's fields, fingerprints apart", r)
	}
	if strings.Contains(logs.String(), string(key)) || strings.Contains(string(g[0].body), string(key)) {
		t.Fatal("the signing key appears in the log or the payload")
	}
}

// The retries wait on the real backoff (webhookBackoff doubling, equal jitter), on the bubble's fake clock:
// the time Close waits is the sum of the retry delays, each within [d/2, d].
func TestWebhookRetriesAndFilters(t *testing.T) {
	tests := []struct {
		name      string
		status    []int
		events    []string
		wantCalls int32
		wantGot   int
		minWait   time.Duration // the retry delays' sum: at least half of each ...
		maxWait   time.Duration // ... at most each whole
	}{
		{"5xx then ok", []int{503, 500, 200}, nil, 3, 1, 1500 * time.Millisecond, 3 * time.Second},
		{"429 retried", []int{429, 200}, nil, 2, 1, 500 * time.Millisecond, time.Second},
		{"4xx not retried", []int{400}, nil, 1, 0, 0, 0},
		{"gives up after the attempts", []int{500}, nil, webhookAttempts, 0, 7500 * time.Millisecond, 15 * time.Second},
		{"event not subscribed", []int{200}, []string{config.EventLeaseLost}, 0, 0, 0, 0},
		{"event subscribed", []int{200}, []string{config.EventLeaseLost, config.EventAction}, 1, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				handler, got, calls := hookHandler(tt.status...)
				a := New(t.Context(), slog.New(slog.DiscardHandler), []WebhookTarget{{URL: "http://hooks.example/hook", Events: tt.events, Timeout: time.Second}})
				for _, h := range a.hooks {
					h.client.Transport = handlerTransport{handler}
				}
				start := time.Now()
				a.Record(Record{Event: config.EventAction, Kind: swarm.KindCA, Actor: "operator:n1", Result: "ok"})
				a.Close(t.Context())
				if calls.Load() != tt.wantCalls || len(got()) != tt.wantGot {
					t.Fatalf("calls = %d, delivered = %d; want %d, %d", calls.Load(), len(got()), tt.wantCalls, tt.wantGot)
				}
				if took := time.Since(start); took < tt.minWait || took > tt.maxWait {
					t.Fatalf("deliveries took %s; want within [%s, %s] (the retry backoff)", took, tt.minWait, tt.maxWait)
				}
			})
		})
	}
}

// TestWebhookErrorHidesURL stays on real time: it needs a real transport failure (a dial to a closed loopback
// port), real network I/O that a synctest bubble cannot host. Its backoff is cut to 1 ms and Close waits with
// no deadline, so a busy machine makes it slower, never wrong.
func TestWebhookErrorHidesURL(t *testing.T) {
	var logs syncBuffer
	url := "http://127.0.0.1:1/services/T000/B000/secret-path-token"
	a := New(t.Context(), slog.New(slog.NewJSONHandler(&logs, nil)), []WebhookTarget{{URL: url, Timeout: time.Second}})
	for _, h := range a.hooks {
		h.backoff = time.Millisecond
	}
	a.Record(Record{Event: config.EventLeaseAcquired, Actor: "operator:n1", Result: "ok"})
	a.Close(t.Context())
	if !strings.Contains(logs.String(), "webhook delivery failed") {
		t.Fatalf("no failure logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "secret-path-token") {
		t.Fatalf("the webhook URL (may hold a token) appears in the log:\n%s", logs.String())
	}
}

func TestSigningKeyRedacted(t *testing.T) {
	k := NewSigningKey([]byte("hunter2-hunter2"))
	var logs syncBuffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "key", k)
	b, _ := json.Marshal(struct{ K SigningKey }{k})
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q", k, k, k, k, k), logs.String(), string(b)} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("key printed: %s", s)
		}
	}
}

// A receiver that redirects does not get the signed record re-posted to the Location, and the log says
// which key to fix; a receiver whose certificate does not verify gets nothing.
func TestWebhookNoRedirectVerifiedTLS(t *testing.T) {
	decoy, decoyGot, decoyCalls := hookServer(t, 200)
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, decoy.URL+"/stolen", code)
			}))
			t.Cleanup(srv.Close)
			var logs syncBuffer
			a := New(t.Context(), slog.New(slog.NewJSONHandler(&logs, nil)), []WebhookTarget{{URL: srv.URL, Key: NewSigningKey([]byte("k")), Timeout: time.Second, Index: 3}})
			a.Record(Record{Event: config.EventAction, Kind: swarm.KindCA, Actor: "operator:n1", Result: "ok"})
			a.Close(t.Context())
			if !strings.Contains(logs.String(), "redirects are not followed") || !strings.Contains(logs.String(), "notify.webhooks[3].url") {
				t.Errorf("log = %s; want the redirect refused, naming notify.webhooks[3].url", logs.String())
			}
		})
	}
	if n := decoyCalls.Load(); n != 0 || len(decoyGot()) != 0 {
		t.Errorf("the redirect target got %d requests; want 0", n)
	}

	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
	t.Cleanup(tlsSrv.Close)
	tlsSrv.Config.ErrorLog = nil
	var logs syncBuffer
	a := New(t.Context(), slog.New(slog.NewJSONHandler(&logs, nil)), []WebhookTarget{{URL: tlsSrv.URL, Timeout: time.Second}})
	for _, h := range a.hooks {
		h.backoff = time.Millisecond
	}
	a.Record(Record{Event: config.EventAction, Kind: swarm.KindCA, Actor: "operator:n1", Result: "ok"})
	a.Close(t.Context())
	if !strings.Contains(logs.String(), "certificate") {
		t.Errorf("log = %s; want the delivery to a receiver with an unknown certificate refused", logs.String())
	}
}

// Action outside an audited context does nothing (and does not panic).
func TestAuditActionWithoutAuditor(t *testing.T) {
	Action(t.Context(), swarm.Entry{Kind: swarm.KindSecret}, time.Second)
}

// Records racing Close are queued or dropped, never sent on a closed queue.
func TestAuditorRecordRacingClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	for range 20 {
		aud := New(t.Context(), slog.New(slog.DiscardHandler), []WebhookTarget{{URL: srv.URL}})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 50 {
					aud.Record(Record{Event: config.EventAction, Result: swarm.ResultOK})
				}
			})
		}
		aud.Close(t.Context())
		wg.Wait()
	}
}
