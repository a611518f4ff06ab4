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

// CAPEM is a P-256 root CA certificate (serial 0x5a17, CN swarm-ca) valid for 20 years from notBefore.
func CAPEM(t testing.TB, notBefore time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return CAPEMWithKey(t, notBefore, &key.PublicKey, key)
}

// CAPEMWithKey is CAPEM for a given key pair (pub may be of any algorithm x509 can sign for).
func CAPEMWithKey(t testing.TB, notBefore time.Time, pub, priv any) string {
	t.Helper()
	tpl := &x509.Certificate{SerialNumber: big.NewInt(0x5a17), Subject: pkix.Name{CommonName: "swarm-ca"},
		NotBefore: notBefore, NotAfter: notBefore.Add(20 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
