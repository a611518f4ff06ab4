package externalca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

type staticCert struct{ c *tls.Certificate }

func (s staticCert) ServerCertificate(context.Context) (*tls.Certificate, error) { return s.c, nil }

func keyPair(t *testing.T, ca testCA, subj pkix.Name, ips []net.IP) tls.Certificate {
	t.Helper()
	k := newKey(t)
	serialSeq++
	tmpl := &x509.Certificate{SerialNumber: bigInt(serialSeq), Subject: subj, IPAddresses: ips, NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	c := mustCreate(t, tmpl, ca, &k.PublicKey)
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k, Leaf: c}
}

// TestServeMutualTLS: the bridge over real TLS: a manager's certificate gets a certificate, a client
// without one gets CFSSL's refusal (not a bare handshake failure), and TLS below 1.2 is refused.
func TestServeMutualTLS(t *testing.T) {
	f := newFixture(t)
	server := keyPair(t, f.vaultCA, pkix.Name{CommonName: "swarm-ca"}, []net.IP{net.ParseIP("127.0.0.1")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, f.bridge, staticCert{&server}, slogJSON(io.Discard)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() at shutdown = %v", err)
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(f.vaultCA.cert)
	url := "https://" + ln.Addr().String() + SignPath
	csr, _ := csrPEM(t, pkix.Name{})
	body := swarmkitJSON(t, csr, nodeID, WorkerOU, swarmID, "")
	post := func(cfg *tls.Config) (int, Response, error) {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader([]byte(body)))
		resp, err := hc.Do(req)
		if err != nil {
			return 0, Response{}, err
		}
		defer resp.Body.Close()
		var r Response
		err = json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r, err
	}
	mgr := keyPair(t, f.root, pkix.Name{CommonName: managerID, OrganizationalUnit: []string{ManagerOU}, Organization: []string{swarmID}}, nil)
	if code, r, err := post(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{mgr}, MinVersion: tls.VersionTLS12}); err != nil || code != 200 || !r.Success {
		t.Errorf("manager over TLS = %d %+v %v; want a certificate", code, r, err)
	}
	if code, r, err := post(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}); err != nil || code != 401 || r.Success {
		t.Errorf("no client certificate over TLS = %d %+v %v; want 401 with CFSSL's error", code, r, err)
	}
	if _, _, err := post(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{mgr}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 was accepted; want refused")
	}
}
