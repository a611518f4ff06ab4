package operator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swarmguard/swarmguard/operator/audit"
)

// HTTP server tunables: a client that is slow to send its request, slow to read the answer, or idle is
// dropped, and no more than HTTPMaxConnections are served at once (more wait in the kernel's backlog), so
// nobody who reaches the port can hold the controller's descriptors or goroutines.
const (
	HTTPReadHeaderTimeout = 5 * time.Second
	HTTPReadTimeout       = 10 * time.Second
	HTTPWriteTimeout      = 30 * time.Second // /metrics of a large swarm renders in well under a second
	HTTPIdleTimeout       = 60 * time.Second
	HTTPMaxHeaderBytes    = 16 << 10
	HTTPMaxConnections    = 64
)

// ReadinessFunc reports readiness from memory; *Runtime.Ready is one.
type ReadinessFunc func() Readiness

// NewServer is the HTTP server of `swarmguard run`, with every timeout set.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: HTTPReadHeaderTimeout, ReadTimeout: HTTPReadTimeout,
		WriteTimeout: HTTPWriteTimeout, IdleTimeout: HTTPIdleTimeout, MaxHeaderBytes: HTTPMaxHeaderBytes}
}

// LimitListener accepts at most n connections at once: Accept waits while n are open.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// BearerToken is what /status/* may require (http.status_token_file). It prints as REDACTED everywhere;
// Empty means none is set (then /status/* is open to whoever reaches its listener).
type BearerToken struct{ audit.Redacted }

// NewBearerToken wraps a token (trimmed of surrounding whitespace).
func NewBearerToken(b []byte) BearerToken {
	return BearerToken{audit.NewRedacted(bytes.TrimSpace(b))}
}

// allows says whether an Authorization header carries the token (constant time).
func (t BearerToken) allows(header string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && t.ConstantTimeEqual([]byte(strings.TrimSpace(got)))
}

// NewHandler serves /healthz (the process is alive and serving), /readyz (engine reachable, configuration
// valid, role known; the body says holder or standby; from memory: ready), /metrics (the runtime's registry)
// and, when status is not nil, /status/* through status (NewStatusHandler).
func NewHandler(m *Metrics, ready ReadinessFunc, status http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rd := ready()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = fmt.Fprint(w, ReadinessText(rd))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{Registry: m.Registry()}))
	index := "swarmguard: /healthz /readyz /metrics"
	if status != nil {
		mux.Handle("/status/", status)
		index += " /status/secrets"
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, index)
	})
	return mux
}

// NewStatusHandler serves /status/secrets: secrets' value as JSON (secretsync's status, from memory; it
// serves each mapping's error as a cause class only). It names Vault paths, secrets and services, so it is
// never open by default: with a token, every /status/ request needs "Authorization: Bearer <token>", from
// anywhere; without one, only a client on the node itself (a loopback address: `docker exec`, a sidecar in
// the container's network namespace) is answered, and any other gets 403.
func NewStatusHandler(secrets func() any, token BearerToken) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status/secrets", func(w http.ResponseWriter, _ *http.Request) {
		body := secrets()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	})
	if token.Empty() {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !fromLoopback(r) {
				http.Error(w, "forbidden: /status/* answers only the node itself (loopback) unless http.status_token_file is set; then send Authorization: Bearer <token>", http.StatusForbidden)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !token.allows(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="swarmguard status"`)
			http.Error(w, "unauthorized: send Authorization: Bearer <the token in http.status_token_file>", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// fromLoopback says whether the request's connection comes from a loopback address. It looks at the
// connection only: a header (X-Forwarded-For) is anyone's to write.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ReadinessText is the /readyz body: the verdict and role on the first line ("ready: holder", "ready:
// standby", "not ready: ..."), then one fact per line.
func ReadinessText(rd Readiness) string {
	var b strings.Builder
	st := rd.Lease
	if rd.Ready {
		fmt.Fprintf(&b, "ready: %s\n", st.Role)
	} else {
		var why []string
		if rd.Engine != "ok" {
			why = append(why, "engine unreachable")
		}
		if rd.Config != "ok" {
			why = append(why, "configuration invalid")
		}
		if st.Role == RoleUnknown {
			why = append(why, "lease not read yet")
		}
		fmt.Fprintf(&b, "not ready: %s\n", strings.Join(why, ", "))
	}
	fmt.Fprintf(&b, "role: %s\n", st.Role)
	fmt.Fprintf(&b, "self: %s\n", st.Self)
	holder := st.Holder
	switch {
	case holder == "" && st.Role != RoleUnknown:
		holder = "none (released)"
	case holder == "":
		holder = "unknown"
	default:
		if st.HolderActor != "" {
			holder += " (" + st.HolderActor + ", " + st.HolderWhat + ")"
		}
		if st.Expired {
			holder += " expired"
		}
	}
	fmt.Fprintf(&b, "holder: %s\n", holder)
	if st.Seq != "" {
		fmt.Fprintf(&b, "lease seq: %s (unchanged for %s)\n", st.Seq, st.SeenFor.Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, "engine: %s\n", rd.Engine)
	fmt.Fprintf(&b, "config: %s\n", strings.ReplaceAll(rd.Config, "\n", "; "))
	if st.Cause != "" {
		fmt.Fprintf(&b, "lease error: %s\n", st.Cause)
	}
	return b.String()
}
