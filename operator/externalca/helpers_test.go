package externalca

import (
	"crypto/rand"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"testing"
)

func slogJSON(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

func bigInt(n int64) *big.Int { return big.NewInt(n) }

func mustCreate(t *testing.T, tmpl *x509.Certificate, ca testCA, pub any) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verifyOpts(tr Trust) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: tr.Roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}
