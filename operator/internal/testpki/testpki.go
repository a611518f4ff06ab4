// Package testpki makes the unit tests' certificates: a root CA with exact dates and serial, on a throwaway
// key (it shows in no output).
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// serial is the serial number of CAPEM's certificates.
const serial = 0x5a17

// CAPEM is a P-256 root CA certificate (serial 0x5a17, CN swarm-ca) valid for 20 years from notBefore.
func CAPEM(t testing.TB, notBefore time.Time) string {
	t.Helper()
	return NewRoot(t, serial, notBefore).PEM
}

// CAPEMWithKey is CAPEM for a given key pair (pub may be of any algorithm x509 can sign for).
func CAPEMWithKey(t testing.TB, notBefore time.Time, pub, priv any) string {
	t.Helper()
	return newRoot(t, serial, notBefore, pub, priv).PEM
}

// Root is a root CA certificate as a node's TLS info refers to it: its PEM, and the raw subject and
// SubjectPublicKeyInfo that name it as a node certificate's issuer.
type Root struct {
	PEM       string
	Subject   []byte
	PublicKey []byte
}

// NewRoot is a P-256 root CA (CN swarm-ca) with the given serial, valid for 20 years from notBefore, on a
// key of its own: two roots are told apart by their public keys.
func NewRoot(t testing.TB, serial int64, notBefore time.Time) Root {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newRoot(t, serial, notBefore, &key.PublicKey, key)
}

func newRoot(t testing.TB, serial int64, notBefore time.Time, pub, priv any) Root {
	t.Helper()
	tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "swarm-ca"},
		NotBefore: notBefore, NotAfter: notBefore.Add(20 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return Root{PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), Subject: c.RawSubject, PublicKey: c.RawSubjectPublicKeyInfo}
}
