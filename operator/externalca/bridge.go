package externalca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/secrets"
)

// Limits of one sign request.
const (
	// MaxRequestBytes bounds a sign request's body: a CSR is under 2 KiB, the JSON around it a few hundred
	// bytes; 64 KiB leaves room for any key type and refuses a flood.
	MaxRequestBytes = 64 << 10
	// signTimeout bounds the Vault calls of one request: swarmkit gives each URL 5 s
	// (ExternalCA.ExternalRequestTimeout) and then tries the next manager.
	signTimeout = 5 * time.Second
)

// EventCertIssued is the audit event of one issuance (or one refused or failed request).
const EventCertIssued = config.EventCertIssued

// Trust is what the bridge needs to know about the swarm at each request.
type Trust struct {
	SwarmID string
	// Roots are the swarm's trusted roots (TLSInfo.TrustRoot): a caller's certificate must chain to one.
	Roots *x509.CertPool
	// NodeCertExpiry is the swarm's node-certificate validity (CAConfig.NodeCertExpiry): the TTL asked of Vault.
	NodeCertExpiry time.Duration
}

// TrustSource reads the swarm's trust at each request, so a root rotation or a new expiry policy applies at once.
type TrustSource interface {
	Trust(ctx context.Context) (Trust, error)
}

// Signer is the part of Vault PKI the bridge uses; *secrets.PKI satisfies it.
type Signer interface {
	Role(ctx context.Context, role string) (secrets.PKIRole, error)
	Sign(ctx context.Context, role string, req secrets.PKISignRequest) (secrets.PKIIssued, error)
	Mount() string
}

var _ Signer = (*secrets.PKI)(nil)

// Recorder receives the bridge's audit records; *audit.Auditor satisfies it.
type Recorder interface {
	Record(r audit.Record)
}

// Roles are the Vault PKI roles the bridge signs through, one per node role: a Vault role fixes the subject's
// O and OU it issues, so each must name this swarm's ID as organization and its node role as ou.
type Roles struct {
	Manager string
	Worker  string
}

// Bridge answers swarmkit's CFSSL sign requests.
type Bridge struct {
	signer  Signer
	trust   TrustSource
	roles   Roles
	audit   Recorder
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
}

// New builds the bridge's handler. audit and metrics may be nil.
func New(signer Signer, trust TrustSource, roles Roles, audit Recorder, metrics *Metrics, log *slog.Logger) *Bridge {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bridge{signer: signer, trust: trust, roles: roles, audit: audit, metrics: metrics,
		log: log.With("component", "external_ca"), now: time.Now}
}

// refusal is an answer other than a certificate: the HTTP status, the CFSSL code, the message sent back
// (never holding a secret) and the result label of metrics and audit.
type refusal struct {
	status int
	code   int
	msg    string
	result string // refused (the caller or its request) or failed (Vault, the swarm)
	reason string // short metric label
}

func (r *refusal) Error() string { return r.msg }

func refuse(status, code int, reason, format string, args ...any) *refusal {
	return &refusal{status: status, code: code, msg: fmt.Sprintf(format, args...), result: "refused", reason: reason}
}

func fail(status, code int, reason, format string, args ...any) *refusal {
	return &refusal{status: status, code: code, msg: fmt.Sprintf(format, args...), result: "failed", reason: reason}
}

// issuance is what one request led to, for the log, the audit record and the metrics.
type issuance struct {
	caller    string // the calling manager's node ID (its certificate's CN)
	node      string
	role      string
	serial    string
	requestID string
}

// ServeHTTP answers one sign request. Every answer other than a certificate is non-200 with CFSSL's error
// shape: swarmkit treats any non-200 answer as recoverable (ca/external.go), tries its next URL and retries
// later, so a sealed Vault or a role being fixed delays a renewal and never fails a node for good.
func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := b.now()
	var is issuance
	certPEM, ref := b.serve(w, r, &is)
	d := b.now().Sub(start)
	if ref != nil {
		b.metrics.observe(ref.result, ref.reason, d)
		attrs := []any{"caller", is.caller, "node", is.node, "role", is.role, "reason", ref.reason, "err", ref.msg}
		if ref.result == "failed" {
			b.log.Warn("sign request failed, swarmkit will retry", attrs...)
		} else {
			b.log.Warn("sign request refused", attrs...)
		}
		b.record(is, ref.result, ref.msg, d)
		writeJSON(w, ref.status, errorResponse(ref.code, ref.msg))
		return
	}
	b.metrics.observe("issued", "", d)
	b.log.Info("issued node certificate", "caller", is.caller, "node", is.node, "role", is.role, "serial", is.serial,
		"vault_mount", b.signer.Mount(), "vault_request_id", is.requestID)
	b.record(is, "ok", "", d)
	writeJSON(w, http.StatusOK, successResponse(certPEM))
}

func (b *Bridge) record(is issuance, result, errMsg string, d time.Duration) {
	if b.audit == nil {
		return
	}
	details := map[string]string{"caller": is.caller, "role": is.role, "vault_mount": b.signer.Mount()}
	if is.serial != "" {
		details["serial"] = is.serial
	}
	if is.requestID != "" {
		details["vault_request_id"] = is.requestID
	}
	b.audit.Record(audit.Record{Time: b.now(), Event: EventCertIssued, Kind: "node-certificate",
		Actor: "external-ca", Result: result, Details: details, DurationSeconds: d.Seconds(), Node: is.node, Error: errMsg})
}

func (b *Bridge) serve(w http.ResponseWriter, r *http.Request, is *issuance) (string, *refusal) {
	if r.URL.Path != SignPath {
		return "", refuse(http.StatusNotFound, codeJSONError, "path", "no such endpoint %q: swarmkit posts to %s", r.URL.Path, SignPath)
	}
	if r.Method != http.MethodPost {
		return "", refuse(http.StatusMethodNotAllowed, codeJSONError, "method", "method %s not allowed: POST a CFSSL sign request", r.Method)
	}
	ctx, cancel := context.WithTimeout(r.Context(), signTimeout)
	defer cancel()
	trust, err := b.trust.Trust(ctx)
	if err != nil {
		return "", fail(http.StatusServiceUnavailable, codeServerFailed, "swarm", "reading the swarm's trust root: %v", err)
	}
	caller, ref := authorize(r, trust)
	if caller != nil {
		is.caller = caller.Subject.CommonName
	}
	if ref != nil {
		return "", ref
	}

	body, err := readBody(w, r)
	if err != nil {
		return "", err.(*refusal)
	}
	var req SignRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return "", refuse(http.StatusBadRequest, codeJSONError, "json", "unable to decode sign request: %v", err)
	}
	want, ref := checkRequest(req, trust.SwarmID)
	if want.CN != "" {
		is.node, is.role = want.CN, want.OU
	}
	if ref != nil {
		return "", ref
	}
	csr, ref := parseCSR(req.Request)
	if ref != nil {
		return "", ref
	}

	role := b.roles.Worker
	if want.OU == ManagerOU {
		role = b.roles.Manager
	}
	vr, err := b.signer.Role(ctx, role)
	if err != nil {
		return "", vaultFailure(err, "reading vault pki role %q", role)
	}
	if msg := roleMismatch(vr, trust.SwarmID, want.OU); msg != "" {
		return "", fail(http.StatusBadGateway, codePolicy, "role", "vault pki role %s/roles/%s %s; nothing was issued", b.signer.Mount(), role, msg)
	}
	issued, err := b.signer.Sign(ctx, role, secrets.PKISignRequest{
		CSRPEM:     req.Request,
		CommonName: want.CN,
		AltNames:   hostsFor(want),
		TTL:        trust.NodeCertExpiry,
	})
	if err != nil {
		return "", vaultFailure(err, "signing through vault pki role %q", role)
	}
	is.serial, is.requestID = issued.Serial, issued.RequestID
	if msg := checkIssued(issued.CertificatePEM, csr, want); msg != "" {
		return "", fail(http.StatusBadGateway, codePolicy, "issued_subject",
			"vault issued serial %s that %s; it was not handed out: fix role %q and revoke it (vault write %s/revoke serial_number=%s)",
			issued.Serial, msg, role, b.signer.Mount(), issued.Serial)
	}
	return issued.CertificatePEM, nil
}

// vaultFailure answers a Vault error: unreachable or sealed (and any 5xx) is 503, what Vault refused 502.
// Both are retried by swarmkit; the message is ours, never a Vault response body.
func vaultFailure(err error, format string, args ...any) *refusal {
	status, reason := http.StatusBadGateway, "vault_refused"
	if errors.Is(err, secrets.ErrUnreachable) {
		status, reason = http.StatusServiceUnavailable, "vault_unreachable"
	}
	return fail(status, codeServerFailed, reason, "%s: %v", fmt.Sprintf(format, args...), err)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, refuse(http.StatusRequestEntityTooLarge, codeJSONError, "too_large", "sign request is over %d bytes", MaxRequestBytes)
		}
		return nil, refuse(http.StatusBadRequest, codeJSONError, "read", "reading the sign request: %v", err)
	}
	return buf.Bytes(), nil
}

// authorize checks the caller's client certificate: it must chain to the swarm's roots, and name a manager
// (OU swarm-manager) of this swarm (O its ID). It returns the caller's certificate when there was one.
func authorize(r *http.Request, trust Trust) (*x509.Certificate, *refusal) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, refuse(http.StatusUnauthorized, codeAuthFailure, "no_client_cert", "must authenticate sign request with mutual TLS: no client certificate")
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: trust.Roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return leaf, refuse(http.StatusForbidden, codeAuthFailure, "untrusted_client_cert", "client certificate %q does not chain to this swarm's root CA: %v", leaf.Subject.CommonName, err)
	}
	if len(leaf.Subject.OrganizationalUnit) != 1 || leaf.Subject.OrganizationalUnit[0] != ManagerOU {
		return leaf, refuse(http.StatusForbidden, codeAuthFailure, "not_manager", "client certificate OU must be %q, got %q: only this swarm's managers may ask for certificates", ManagerOU, strings.Join(leaf.Subject.OrganizationalUnit, ","))
	}
	if len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != trust.SwarmID {
		return leaf, refuse(http.StatusForbidden, codeAuthFailure, "other_swarm", "client certificate O %q is not this swarm's ID %q", strings.Join(leaf.Subject.Organization, ","), trust.SwarmID)
	}
	return leaf, nil
}

// wanted is the subject swarmkit asked for.
type wanted struct{ CN, OU, O string }

// checkRequest checks the request's profile and subject: one name, O this swarm's ID, OU a node role, CN a
// node ID. What it returns is the subject the certificate gets, whatever the CSR says.
func checkRequest(req SignRequest, swarmID string) (wanted, *refusal) {
	switch req.Profile {
	case "":
	case CrossSignProfile:
		return wanted{}, refuse(http.StatusBadRequest, codePolicy, "cross_sign", "profile %q (cross-signing a new root CA) is not supported by this bridge: rotate the root with swarmguard rotate ca", CrossSignProfile)
	default:
		return wanted{}, refuse(http.StatusBadRequest, codePolicy, "profile", "unknown profile %q: swarmkit sends an empty profile for node certificates", req.Profile)
	}
	if req.Subject == nil {
		return wanted{}, refuse(http.StatusBadRequest, codeCSRBadRequest, "subject", "sign request must contain a subject field")
	}
	if len(req.Subject.Names) != 1 {
		return wanted{}, refuse(http.StatusBadRequest, codeCSRBadRequest, "subject", "sign request subject must have exactly one name {O: swarm ID, OU: role}, got %d", len(req.Subject.Names))
	}
	n := req.Subject.Names[0]
	w := wanted{CN: req.Subject.CN, OU: n.OU, O: n.O}
	if !validNodeID(w.CN) {
		return wanted{}, refuse(http.StatusBadRequest, codeCSRBadRequest, "subject", "sign request subject CN %q is not a swarm node ID", w.CN)
	}
	if w.O != swarmID {
		return w, refuse(http.StatusBadRequest, codeCSRBadRequest, "subject", "sign request subject org %q does not match this swarm's ID %q", w.O, swarmID)
	}
	if w.OU != ManagerOU && w.OU != WorkerOU {
		return w, refuse(http.StatusBadRequest, codeCSRBadRequest, "subject", "sign request subject OU %q is not %s or %s", w.OU, ManagerOU, WorkerOU)
	}
	if n.C != "" || n.ST != "" || n.L != "" || n.SerialNumber != "" || len(n.OID) > 0 || req.Subject.SerialNumber != "" {
		return w, refuse(http.StatusBadRequest, codeCSRBadRequest, "subject", "sign request subject has fields swarmkit never sends (C, ST, L, SerialNumber, OID)")
	}
	return w, nil
}

// validNodeID: swarmkit's node IDs are 25 lower-case base-36 characters; accept 1 to 64 of [a-z0-9] so a
// future length still works, and nothing that could be a DNS wildcard or another name.
func validNodeID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// hostsFor gives the names swarmkit's own CA puts in a node certificate (ca.PrepareCSR): the role, the node
// ID, and swarm-ca for managers. They are derived from the subject, not taken from the request.
func hostsFor(w wanted) []string {
	hosts := []string{w.OU, w.CN}
	if w.OU == ManagerOU {
		hosts = append(hosts, caHost)
	}
	return hosts
}

func parseCSR(p string) (*x509.CertificateRequest, *refusal) {
	block, _ := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, refuse(http.StatusBadRequest, codeCSRBadRequest, "csr", "certificate_request is not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, codeCSRBadRequest, "csr", "certificate_request does not parse: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, refuse(http.StatusBadRequest, codeCSRBadRequest, "csr", "certificate_request signature does not verify: %v", err)
	}
	return csr, nil
}

// roleMismatch says how a Vault role would issue another subject than the wanted one, or "".
func roleMismatch(r secrets.PKIRole, swarmID, ou string) string {
	var probs []string
	if !slices.Equal(r.Organization, []string{swarmID}) {
		probs = append(probs, fmt.Sprintf("has organization %q, not [%q]", r.Organization, swarmID))
	}
	if !slices.Equal(r.OU, []string{ou}) {
		probs = append(probs, fmt.Sprintf("has ou %q, not [%q]", r.OU, ou))
	}
	if r.UseCSRCommonName {
		probs = append(probs, "has use_csr_common_name=true (the CSR would choose the CN)")
	}
	if r.UseCSRSANs {
		probs = append(probs, "has use_csr_sans=true (the CSR would choose the names)")
	}
	if len(probs) == 0 {
		return ""
	}
	return strings.Join(probs, ", ") + fmt.Sprintf(": set organization=%s ou=%s use_csr_common_name=false use_csr_sans=false", swarmID, ou)
}

// checkIssued makes sure what Vault issued is what was asked: the wanted subject and the CSR's key.
func checkIssued(certPEM string, csr *x509.CertificateRequest, w wanted) string {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return "is not PEM"
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "does not parse"
	}
	s := c.Subject
	if s.CommonName != w.CN || !slices.Equal(s.Organization, []string{w.O}) || !slices.Equal(s.OrganizationalUnit, []string{w.OU}) {
		return fmt.Sprintf("has subject CN=%s O=%v OU=%v, not CN=%s O=%s OU=%s", s.CommonName, s.Organization, s.OrganizationalUnit, w.CN, w.O, w.OU)
	}
	if !bytes.Equal(c.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) {
		return "holds another key than the CSR's"
	}
	return ""
}
