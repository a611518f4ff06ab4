package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// Fixed instants for every test: certificates are generated per run with
// fresh keys but exact serials, names and dates, so every rendered figure is
// stable; no key-dependent byte reaches a golden file.
var (
	testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day     = 24 * time.Hour
)

type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  string
}

func p256(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// newCA makes a self-signed root like swarmkit's (CN=swarm-ca).
func newCA(t testing.TB, key crypto.Signer, serial int64, cn string, nb, na time.Time) testCA {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             nb,
		NotAfter:              na,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: c, key: key, pem: pemOf(c)}
}

// leaf issues a node certificate like swarmkit's: CN = node ID, OU = role,
// DNS names swarm-<role> and the node ID.
func (ca testCA) leaf(t testing.TB, serial int64, nodeID, role string, nb, na time.Time) *x509.Certificate {
	t.Helper()
	return ca.leafWithKey(t, p256(t), serial, nodeID, role, nb, na)
}

func (ca testCA) leafWithKey(t testing.TB, key crypto.Signer, serial int64, nodeID, role string, nb, na time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: nodeID, OrganizationalUnit: []string{"swarm-" + role}, Organization: []string{"swarmguard-test"}},
		NotBefore:    nb,
		NotAfter:     na,
		DNSNames:     []string{"swarm-" + role, nodeID},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rsaKey(t testing.TB, bits int) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// cluster returns the Cluster for a CA, issuer fields from the CA itself.
func (ca testCA) cluster(expiry time.Duration) Cluster {
	return Cluster{
		TrustRootPEM:    ca.pem,
		IssuerSubject:   ca.cert.RawSubject,
		IssuerPublicKey: ca.cert.RawSubjectPublicKeyInfo,
		NodeCertExpiry:  expiry,
	}
}

// node builds a NodeInput whose TLSInfo names ca as issuer and trust root.
func (ca testCA) node(id, host, role, state string) NodeInput {
	n := NodeInput{
		ID: id, Hostname: host, Role: role, State: state, Availability: "active",
		TrustRootPEM: ca.pem, IssuerSubject: ca.cert.RawSubject, IssuerPublicKey: ca.cert.RawSubjectPublicKeyInfo,
	}
	if role == RoleManager {
		n.ManagerAddr = host + ":2377"
	}
	return n
}

// tlsCert issues a key pair for a test TLS server, valid around the real
// clock because TLS verification uses it.
func tlsCert(t testing.TB, ca testCA, serial int64, nodeID, role string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key := p256(t)
	now := time.Now()
	c := ca.leafWithKey(t, key, serial, nodeID, role, now.Add(-time.Hour), now.Add(24*time.Hour))
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}, c
}
