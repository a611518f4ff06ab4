package operator

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStatusDefaultLoopbackOnly: without http.status_token_file, /status/* (Vault paths, secret and service
// names) answers the node itself only: a client from any other address, as through a published port or the
// ingress network, gets 403 saying how to open it. With the token it answers anyone who sends it, and no
// one without it. /healthz, /readyz and /metrics stay open on listen.
func TestStatusDefaultLoopbackOnly(t *testing.T) {
	body := func() any { return map[string]string{"role": RoleStandby, "source": "secret/apps/db"} }
	open := NewHandler(NewMetrics(), func() Readiness { return Readiness{} }, NewStatusHandler(body, BearerToken{}))
	withToken := NewStatusHandler(body, NewBearerToken([]byte("status-token-0123456789")))
	for _, tt := range []struct {
		name, remote, path, auth string
		h                        http.Handler
		want                     int
	}{
		{"no token, another host", "192.0.2.7:40000", "/status/secrets", "", open, http.StatusForbidden},
		{"no token, the ingress network", "10.0.0.2:51000", "/status/secrets", "", open, http.StatusForbidden},
		{"no token, IPv6 host", "[2001:db8::1]:40000", "/status/secrets", "", open, http.StatusForbidden},
		{"no token, loopback", "127.0.0.1:40000", "/status/secrets", "", open, http.StatusOK},
		{"no token, loopback IPv6", "[::1]:40000", "/status/secrets", "", open, http.StatusOK},
		{"no token, another host, health", "192.0.2.7:40000", "/healthz", "", open, http.StatusOK},
		{"no token, another host, metrics", "192.0.2.7:40000", "/metrics", "", open, http.StatusOK},
		{"token, another host, none sent", "192.0.2.7:40000", "/status/secrets", "", withToken, http.StatusUnauthorized},
		{"token, loopback, none sent", "127.0.0.1:40000", "/status/secrets", "", withToken, http.StatusUnauthorized},
		{"token, another host, sent", "192.0.2.7:40000", "/status/secrets", "Bearer status-token-0123456789", withToken, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, tt.path, nil)
			req.RemoteAddr = tt.remote
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("GET %s from %s = %d %q; want %d", tt.path, tt.remote, rec.Code, rec.Body.String(), tt.want)
			}
			if rec.Code == http.StatusForbidden && !strings.Contains(rec.Body.String(), "http.status_token_file") {
				t.Errorf("403 body %q; want it to name http.status_token_file", rec.Body.String())
			}
			if rec.Code != http.StatusOK && strings.Contains(rec.Body.String(), "secret/apps/db") {
				t.Errorf("refused answer carries the status: %q", rec.Body.String())
			}
		})
	}
}

// TestStatusDefaultOverTheNetwork: the same on a real listener. From loopback it answers; a connection to
// the machine's own non-loopback address comes from that address, and is refused.
func TestStatusDefaultOverTheNetwork(t *testing.T) {
	h := NewHandler(NewMetrics(), func() Readiness { return Readiness{} }, NewStatusHandler(func() any { return map[string]string{"role": "standby"} }, BearerToken{}))
	fetch := func(addr string) int {
		t.Helper()
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		srv := NewServer(h)
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+ln.Addr().String()+"/status/secrets", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := fetch("127.0.0.1"); code != http.StatusOK {
		t.Errorf("GET /status/secrets over loopback = %d; want 200", code)
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			if code := fetch(ipn.IP.String()); code != http.StatusForbidden {
				t.Errorf("GET /status/secrets over %s = %d; want 403", ipn.IP, code)
			}
			return
		}
	}
	t.Log("no non-loopback IPv4 address on this machine: only loopback checked")
}
