package pki

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCertificates(t *testing.T) {
	ca := newCA(t, p256(t), 0x1001, "swarm-ca", testNow.Add(-day), testNow.Add(365*day))
	leaf := ca.leaf(t, 0xABCDEF, "node1", RoleManager, testNow.Add(-day), testNow.Add(89*day))
	keyBlock := "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"

	certs, err := ParseCertificates([]byte(pemOf(leaf) + keyBlock + ca.pem))
	if err != nil {
		t.Fatalf("ParseCertificates(chain) = %v", err)
	}
	if len(certs) != 2 || SerialHex(certs[0]) != "ABCDEF" || SerialHex(certs[1]) != "1001" {
		t.Fatalf("ParseCertificates(chain) serials = %d certs; want leaf ABCDEF then root 1001", len(certs))
	}
	if _, err := ParseCertificates([]byte(keyBlock)); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("ParseCertificates(key only) = %v; want ErrNoCertificate", err)
	}
	bad := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	if _, err := ParseCertificates([]byte(bad)); err == nil || !strings.Contains(err.Error(), "certificate 1") {
		t.Errorf("ParseCertificates(garbage) = %v; want a parse error naming certificate 1", err)
	}
	f := Facts(leaf)
	if f.Subject != "CN=node1,OU=swarm-manager,O=swarmguard-test" || f.Issuer != "CN=swarm-ca" || f.KeyAlgorithm != "ECDSA" || f.KeyBits != 256 {
		t.Errorf("Facts(leaf) = %+v", f)
	}
	if f.Validity() != 90*day {
		t.Errorf("Validity() = %v; want 2160h", f.Validity())
	}
}

func TestWeakKey(t *testing.T) {
	tests := []struct {
		algo string
		bits int
		weak bool
	}{
		{"RSA", 1024, true},
		{"RSA", 2047, true},
		{"RSA", 2048, false},
		{"RSA", 4096, false},
		{"ECDSA", 224, true},
		{"ECDSA", 256, false},
		{"ECDSA", 384, false},
		{"Ed25519", 256, false},
		{"unknown", 0, true},
	}
	for _, tt := range tests {
		if got, why := WeakKey(tt.algo, tt.bits); got != tt.weak {
			t.Errorf("WeakKey(%s, %d) = %v (%s); want %v", tt.algo, tt.bits, got, why, tt.weak)
		}
	}
}

func TestKeyInfoRSA(t *testing.T) {
	ca := newCA(t, rsaKey(t, 1024), 7, "weak-ca", testNow.Add(-day), testNow.Add(day))
	if algo, bits := KeyInfo(ca.cert); algo != "RSA" || bits != 1024 {
		t.Errorf("KeyInfo(rsa1024) = %s %d; want RSA 1024", algo, bits)
	}
}
