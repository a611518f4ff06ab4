package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Minimum key strengths: anything weaker than these is a finding. They follow
// NIST SP 800-57 (112-bit security) and Swarm's own default (ECDSA P-256).
const (
	minRSABits   = 2048
	minECDSABits = 256
)

// ErrNoCertificate is returned when PEM input holds no CERTIFICATE block.
var ErrNoCertificate = errors.New("no PEM certificate found")

// ParseCertificates parses every CERTIFICATE block of pemData, in order. Other
// block types (a private key pasted by mistake, for instance) are skipped
// without being looked at.
func ParseCertificates(pemData []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := pemData
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	return certs, nil
}

// ParseCertificate parses the first CERTIFICATE block of pemData: the leaf of
// a chain, or the root of a trust bundle.
func ParseCertificate(pemData []byte) (*x509.Certificate, error) {
	certs, err := ParseCertificates(pemData)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// CertFacts are the printable facts of one certificate. Nothing in it is
// secret: subject, serial, public key algorithm and size, and validity.
type CertFacts struct {
	Subject      string
	Issuer       string
	Serial       string // upper-case hex, as `openssl x509 -serial` prints it
	KeyAlgorithm string // "RSA", "ECDSA", "Ed25519" or "unknown"
	KeyBits      int    // RSA modulus size or the ECDSA curve size; 256 for Ed25519
	NotBefore    time.Time
	NotAfter     time.Time
}

// Facts extracts c's printable facts.
func Facts(c *x509.Certificate) CertFacts {
	algo, bits := KeyInfo(c)
	return CertFacts{
		Subject:      c.Subject.String(),
		Issuer:       c.Issuer.String(),
		Serial:       SerialHex(c),
		KeyAlgorithm: algo,
		KeyBits:      bits,
		NotBefore:    c.NotBefore.UTC(),
		NotAfter:     c.NotAfter.UTC(),
	}
}

// Validity is NotAfter minus NotBefore.
func (f CertFacts) Validity() time.Duration { return f.NotAfter.Sub(f.NotBefore) }

// SerialHex formats c's serial number as upper-case hex without separators.
func SerialHex(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	return strings.ToUpper(c.SerialNumber.Text(16))
}

// KeyInfo names the algorithm of c's public key and its size in bits.
func KeyInfo(c *x509.Certificate) (algorithm string, bits int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	default:
		return "unknown", 0
	}
}

// WeakKey reports whether a key of this algorithm and size is weaker than
// RSA 2048 / ECDSA P-256, with the reason. An unknown algorithm counts as weak:
// what cannot be judged cannot be vouched for.
func WeakKey(algorithm string, bits int) (bool, string) {
	switch algorithm {
	case "RSA":
		if bits < minRSABits {
			return true, fmt.Sprintf("RSA %d bits is below %d", bits, minRSABits)
		}
	case "ECDSA":
		if bits < minECDSABits {
			return true, fmt.Sprintf("ECDSA %d bits is below P-%d", bits, minECDSABits)
		}
	case "Ed25519":
	default:
		return true, "unknown key algorithm " + algorithm
	}
	return false, ""
}
