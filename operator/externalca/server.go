package externalca

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts of the bridge's HTTPS server. A sign request is a few KiB and its answer waits for Vault at most
// signTimeout; anything slower is a stuck or hostile client.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = signTimeout + 5*time.Second
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// CertSource gives the bridge's own TLS server certificate.
type CertSource interface {
	ServerCertificate(ctx context.Context) (*tls.Certificate, error)
}

// TLSConfig is the bridge's server TLS: TLS 1.2 or later (swarmkit's minimum), a client certificate requested
// and its chain, OU and O checked by the handler against the swarm's current roots (which change with a root
// rotation), so a refusal gets a CFSSL answer and a log line rather than a bare handshake failure.
func TLSConfig(ctx context.Context, certs CertSource) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return certs.ServerCertificate(ctx)
		},
	}
}

// Serve runs the bridge on ln (already a TCP listener) until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, certs CertSource, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         TLSConfig(ctx, certs),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.With("component", "external_ca").Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-done:
		return fmt.Errorf("external CA bridge on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			return serr
		}
		return err
	}
}

// VaultCert is a CertSource that has Vault issue the server certificate and issues a new one when two
// thirds of its validity have passed.
type VaultCert struct {
	Issue func(ctx context.Context) (tls.Certificate, error)
	Now   func() time.Time

	mu   sync.Mutex
	cur  *tls.Certificate
	renw time.Time
}

// ServerCertificate returns the current certificate, issuing one when there is none or it is due.
func (v *VaultCert) ServerCertificate(ctx context.Context) (*tls.Certificate, error) {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cur != nil && now().Before(v.renw) {
		return v.cur, nil
	}
	ictx, cancel := context.WithTimeout(ctx, signTimeout)
	defer cancel()
	c, err := v.Issue(ictx)
	if err != nil {
		if v.cur != nil && now().Before(v.cur.Leaf.NotAfter) {
			return v.cur, nil // still valid: keep serving while Vault is away
		}
		return nil, err
	}
	if c.Leaf == nil {
		return nil, errors.New("issued server certificate has no parsed leaf")
	}
	v.cur = &c
	v.renw = c.Leaf.NotBefore.Add(c.Leaf.NotAfter.Sub(c.Leaf.NotBefore) * 2 / 3)
	return v.cur, nil
}
