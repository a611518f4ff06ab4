package secrets

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// pkiLogical is the part of the Vault client the PKI signer uses; *api.Logical satisfies it.
type pkiLogical interface {
	ReadWithContext(ctx context.Context, path string) (*api.Secret, error)
	WriteWithContext(ctx context.Context, path string, data map[string]any) (*api.Secret, error)
}

var _ pkiLogical = (*api.Logical)(nil)

// PKI signs certificate requests through one Vault PKI mount. It never sees a CA key: Vault signs.
type PKI struct {
	logical pkiLogical
	mount   string
}

// PKI returns the signer over the PKI secrets engine mounted at mount (e.g. "pki-swarm").
func (v *Vault) PKI(mount string) *PKI { return newPKI(v.client.Logical(), mount) }

func newPKI(l pkiLogical, mount string) *PKI {
	return &PKI{logical: l, mount: strings.Trim(mount, "/")}
}

// Mount is the PKI mount path this signer uses.
func (p *PKI) Mount() string { return p.mount }

// PKISignRequest is what the signer asks Vault to sign: the CSR (PEM) with the subject's common name and the
// alternative names chosen by the caller, not the CSR's.
type PKISignRequest struct {
	CSRPEM     string
	CommonName string
	AltNames   []string
	TTL        time.Duration
}

// PKIIssued is what Vault issued: the certificate (PEM), its serial as Vault writes it (colon-separated hex)
// and the request ID Vault logged it under (for the audit trail).
type PKIIssued struct {
	CertificatePEM string
	Serial         string
	RequestID      string
}

// PKIRole is the part of a Vault PKI role that decides the subject of what it signs.
type PKIRole struct {
	Organization     []string
	OU               []string
	UseCSRCommonName bool
	UseCSRSANs       bool
}

// Role reads a role's subject settings (<mount>/roles/<role>), so a caller can refuse to sign through a role
// that would give another subject than the one it must.
func (p *PKI) Role(ctx context.Context, role string) (PKIRole, error) {
	path := p.mount + "/roles/" + role
	sec, err := p.logical.ReadWithContext(ctx, path)
	if err != nil {
		return PKIRole{}, vaultError("reading pki role", path, err)
	}
	if sec == nil || sec.Data == nil {
		return PKIRole{}, fmt.Errorf("reading pki role %q: %w: create it (vault write %s organization=<swarm ID> ou=<swarm-manager|swarm-worker> use_csr_common_name=false use_csr_sans=false allow_any_name=true)", path, ErrNotFound, path)
	}
	return PKIRole{
		Organization:     stringList(sec.Data["organization"]),
		OU:               stringList(sec.Data["ou"]),
		UseCSRCommonName: sec.Data["use_csr_common_name"] == true,
		UseCSRSANs:       sec.Data["use_csr_sans"] == true,
	}, nil
}

// Sign asks Vault to sign a CSR through <mount>/sign/<role>. The subject's organization and unit come from
// the role, the common name and alternative names from req.
func (p *PKI) Sign(ctx context.Context, role string, req PKISignRequest) (PKIIssued, error) {
	path := p.mount + "/sign/" + role
	data := map[string]any{
		"csr":                  req.CSRPEM,
		"common_name":          req.CommonName,
		"alt_names":            strings.Join(req.AltNames, ","),
		"format":               "pem",
		"exclude_cn_from_sans": false,
	}
	if req.TTL > 0 {
		data["ttl"] = fmt.Sprintf("%ds", int64(req.TTL/time.Second))
	}
	sec, err := p.logical.WriteWithContext(ctx, path, data)
	if err != nil {
		return PKIIssued{}, vaultError("signing with", path, err)
	}
	if sec == nil || sec.Data == nil {
		return PKIIssued{}, fmt.Errorf("signing with %q: %w: vault answered without a certificate", path, ErrUnreachable)
	}
	cert, _ := sec.Data["certificate"].(string)
	serial, _ := sec.Data["serial_number"].(string)
	if cert == "" {
		return PKIIssued{}, fmt.Errorf("signing with %q: %w: vault answered without a certificate", path, ErrUnreachable)
	}
	return PKIIssued{CertificatePEM: cert, Serial: serial, RequestID: sec.RequestID}, nil
}

// Issued reports whether Vault's list of issued certificates (<mount>/certs) holds serial (colon-separated
// hex, as Sign returns it).
func (p *PKI) Issued(ctx context.Context, serial string) (bool, error) {
	path := p.mount + "/cert/" + serial
	sec, err := p.logical.ReadWithContext(ctx, path)
	if err != nil {
		if errors.Is(vaultError("", path, err), ErrNotFound) {
			return false, nil
		}
		return false, vaultError("reading issued certificate", path, err)
	}
	return sec != nil && sec.Data != nil && sec.Data["certificate"] != nil && sec.Data["certificate"] != "", nil
}

func stringList(x any) []string {
	var out []string
	switch v := x.(type) {
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	case []string:
		out = append(out, v...)
	case string:
		if v != "" {
			out = append(out, strings.Split(v, ",")...)
		}
	}
	return out
}

// IssueServer has Vault issue a TLS server certificate and key (<mount>/issue/<role>) for the bridge's own
// endpoint: names are its DNS names and IP addresses. The key is generated by Vault and handed back only
// inside the tls.Certificate; it is never logged. It is not a CA key.
func (p *PKI) IssueServer(ctx context.Context, role, commonName string, dnsNames, ips []string, ttl time.Duration) (tls.Certificate, error) {
	path := p.mount + "/issue/" + role
	data := map[string]any{"common_name": commonName, "format": "pem", "private_key_format": "pkcs8"}
	if len(dnsNames) > 0 {
		data["alt_names"] = strings.Join(dnsNames, ",")
	}
	if len(ips) > 0 {
		data["ip_sans"] = strings.Join(ips, ",")
	}
	if ttl > 0 {
		data["ttl"] = fmt.Sprintf("%ds", int64(ttl/time.Second))
	}
	sec, err := p.logical.WriteWithContext(ctx, path, data)
	if err != nil {
		return tls.Certificate{}, vaultError("issuing a server certificate with", path, err)
	}
	if sec == nil || sec.Data == nil {
		return tls.Certificate{}, fmt.Errorf("issuing a server certificate with %q: %w: vault answered without a certificate", path, ErrUnreachable)
	}
	cert, _ := sec.Data["certificate"].(string)
	key, _ := sec.Data["private_key"].(string)
	chain := cert
	if ca, ok := sec.Data["issuing_ca"].(string); ok && ca != "" {
		chain += "\n" + ca
	}
	pair, err := tls.X509KeyPair([]byte(chain), []byte(key))
	if err != nil {
		// err names no key material (crypto/tls reports only what failed to parse).
		return tls.Certificate{}, fmt.Errorf("issuing a server certificate with %q: vault's answer does not make a key pair: %w", path, err)
	}
	return pair, nil
}
