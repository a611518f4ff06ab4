package audit

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type panicTransport struct{ calls atomic.Int32 }

func (p *panicTransport) RoundTrip(*http.Request) (*http.Response, error) {
	p.calls.Add(1)
	panic("posting")
}

// TestWebhookSenderSurvivesAPanic: a panic while delivering one record loses that record only; the sender
// goes on with the next, and the process lives.
func TestWebhookSenderSurvivesAPanic(t *testing.T) {
	rt := &panicTransport{}
	h := &webhook{target: WebhookTarget{URL: "https://hooks.example.com/x"}, queue: make(chan delivery, 2),
		log: slog.New(slog.DiscardHandler), client: &http.Client{Transport: rt}, backoff: time.Millisecond, now: time.Now}
	h.queue <- delivery{id: "1", event: "action", body: []byte("{}")}
	h.queue <- delivery{id: "2", event: "action", body: []byte("{}")}
	close(h.queue)
	h.run(t.Context())
	if n := rt.calls.Load(); n != 2 {
		t.Fatalf("deliveries attempted = %d; want 2 (the second after the first panicked)", n)
	}
}
