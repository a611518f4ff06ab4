package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// defaultProbeTimeout bounds one manager handshake: a manager that takes
// longer than this to say hello on 2377 is not one to trust for figures.
const defaultProbeTimeout = 5 * time.Second

// TLSProber reads a manager's certificate with a TLS handshake on its swarm
// address (port 2377). Managers accept a handshake without a client
// certificate; the presented chain is verified against the swarm's trust root
// for the name "swarm-manager", so a figure never comes from an impostor.
type TLSProber struct {
	Timeout time.Duration // per handshake; defaultProbeTimeout when zero
	// Dial replaces net.Dialer.DialContext (tests, network namespaces).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

var _ Prober = (*TLSProber)(nil)

// Probe returns the verified chain presented on addr, leaf first.
func (p *TLSProber) Probe(ctx context.Context, addr string, roots *x509.CertPool) ([]*x509.Certificate, error) {
	if roots == nil {
		return nil, errors.New("no trust root to verify against")
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = defaultProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := p.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	defer func() { _ = raw.Close() }()
	conn := tls.Client(raw, &tls.Config{
		ServerName: probeServerName,
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
	})
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	chain := conn.ConnectionState().PeerCertificates
	_ = conn.Close()
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s presented no certificate", addr)
	}
	return chain, nil
}
