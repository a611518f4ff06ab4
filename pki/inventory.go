package pki

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/guard"
)

// Source names where a node's certificate figures came from.
type Source string

// The sources, best first.
const (
	SourceControlAPI Source = "control-api" // swarmkit ListNodes → Node.Certificate
	SourceTLSProbe   Source = "tls-probe"   // a TLS handshake with the manager's address
	SourceUnknown    Source = "unknown"     // not read; Reason says why
)

// Node roles and states as the Engine API spells them.
const (
	RoleManager = "manager"
	RoleWorker  = "worker"
	StateReady  = "ready"
	StateDown   = "down"
)

// probeServerName is the name every swarm manager certificate carries
// (swarmkit ca.ManagerRole's DNS SAN), used to verify a probed certificate.
const probeServerName = "swarm-manager"

// Cluster is what pki needs to know about the swarm itself.
type Cluster struct {
	// TrustRootPEM is ClusterInfo.TLSInfo.TrustRoot: the root(s) nodes trust.
	TrustRootPEM string
	// IssuerSubject and IssuerPublicKey are ClusterInfo.TLSInfo.CertIssuerSubject
	// and CertIssuerPublicKey: the raw subject and SubjectPublicKeyInfo of the
	// issuer the cluster wants node certificates from. During a root rotation
	// they name the new CA while TrustRootPEM still holds the old one. Empty
	// means: take them from the first certificate of TrustRootPEM.
	IssuerSubject   []byte
	IssuerPublicKey []byte
	// NodeCertExpiry is Spec.CAConfig.NodeCertExpiry (0: unknown or default).
	NodeCertExpiry time.Duration
	// RootRotationInProgress is ClusterInfo.RootRotationInProgress.
	RootRotationInProgress bool
}

// NodeInput is one node as the Engine API describes it.
type NodeInput struct {
	ID           string
	Hostname     string
	Role         string // "manager" or "worker"
	State        string // "ready", "down", "unknown", "disconnected"
	Availability string // "active", "pause", "drain"
	// ManagerAddr is ManagerStatus.Addr (host:port); empty for workers.
	ManagerAddr string
	// TrustRootPEM, IssuerSubject and IssuerPublicKey are the node's own
	// Description.TLSInfo: what it trusts and who issued its certificate.
	TrustRootPEM    string
	IssuerSubject   []byte
	IssuerPublicKey []byte
	// StatusChangedAt is the best known time the node entered its current
	// state ("down since" for a down node); zero when unknown.
	StatusChangedAt time.Time
}

// Down reports whether the node is not connected to the managers.
func (n NodeInput) Down() bool {
	return n.State == StateDown || n.State == "disconnected"
}

// CertLister reads every node's issued certificate from the swarmkit control
// API. The map is node ID to PEM; an empty value means the control API holds
// no certificate for that node (the first manager until its first reissue).
type CertLister interface {
	NodeCertificates(ctx context.Context) (map[string][]byte, error)
}

// Prober fetches the certificate chain a manager presents on addr. It must
// verify the chain against roots for the server name "swarm-manager".
type Prober interface {
	Probe(ctx context.Context, addr string, roots *x509.CertPool) ([]*x509.Certificate, error)
}

// Sources are the ways to read node certificates; a nil one is not available.
type Sources struct {
	Control CertLister
	Prober  Prober
}

// CAInfo describes the current root CA. Err is set when the trust root could
// not be read; the other fields are then zero.
type CAInfo struct {
	CertFacts
	Cert *x509.Certificate
	Err  error
}

// NodeCert is one node's row of the inventory.
type NodeCert struct {
	ID           string
	Hostname     string
	Role         string
	State        string
	Availability string
	DownSince    time.Time // StatusChangedAt when the node is down

	// Known is false when no source could read the certificate; Cert is then
	// zero and Reason says why.
	Known  bool
	Cert   CertFacts
	Source Source
	Reason string

	// IssuerCurrent tells whether the node's certificate was issued by the
	// cluster's current issuer. IssuerKnown is false when neither the leaf nor
	// the node's TLSInfo said.
	IssuerCurrent bool
	IssuerKnown   bool
}

// Inventory is everything read about the swarm's certificates.
type Inventory struct {
	CA                     CAInfo
	NodeCertExpiry         time.Duration
	RootRotationInProgress bool
	Nodes                  []NodeCert
}

// Collect reads every node's certificate from the best source: the control
// API for all nodes, then a TLS probe of each manager the control API did not
// answer for, else unknown with the reason. Read failures never fail the
// call: they become unknown rows, because "couldn't read" must be shown, not
// guessed around.
func Collect(ctx context.Context, c Cluster, nodes []NodeInput, src Sources) Inventory {
	var obs Observed
	if src.Control != nil {
		obs.Control, obs.ControlErr = src.Control.NodeCertificates(ctx)
	} else {
		obs.ControlErr = ErrNoControlAPI
	}
	roots, rootErr := trustPool(c.TrustRootPEM)
	obs.Probes = map[string]ProbeResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n.Role != RoleManager || n.ManagerAddr == "" {
			continue
		}
		if pemData := obs.Control[n.ID]; len(pemData) > 0 {
			continue
		}
		if src.Prober == nil {
			continue
		}
		if rootErr != nil {
			obs.Probes[n.ID] = ProbeResult{Err: fmt.Errorf("cannot verify a probe without a trust root: %w", rootErr)}
			continue
		}
		wg.Add(1)
		go func(id, addr string) {
			defer wg.Done()
			var chain []*x509.Certificate
			var err error
			if perr := guard.Do("probing "+addr, func() { chain, err = src.Prober.Probe(ctx, addr, roots) }); perr != nil {
				chain, err = nil, perr // this node's certificate is unknown; the process and the other probes go on
			}
			mu.Lock()
			obs.Probes[id] = ProbeResult{Chain: chain, Err: err}
			mu.Unlock()
		}(n.ID, n.ManagerAddr)
	}
	wg.Wait()
	return Assemble(c, nodes, obs)
}

// ErrNoControlAPI says the control socket is not configured or not mounted.
var ErrNoControlAPI = errors.New("control API not configured (set pki.control_socket and mount control.sock)")

// Observed is what the sources returned, kept apart so that Assemble is a
// pure function.
type Observed struct {
	Control    map[string][]byte // node ID → PEM from the control API
	ControlErr error
	Probes     map[string]ProbeResult // node ID → TLS probe result
}

// ProbeResult is one manager's TLS probe outcome.
type ProbeResult struct {
	Chain []*x509.Certificate
	Err   error
}

// Assemble builds the inventory from what was observed. Nodes are sorted by
// role (managers first), then hostname, then ID.
func Assemble(c Cluster, nodes []NodeInput, obs Observed) Inventory {
	inv := Inventory{NodeCertExpiry: c.NodeCertExpiry, RootRotationInProgress: c.RootRotationInProgress}
	if root, err := ParseCertificate([]byte(c.TrustRootPEM)); err != nil {
		inv.CA.Err = fmt.Errorf("reading the trust root: %w", err)
	} else {
		inv.CA.Cert = root
		inv.CA.CertFacts = Facts(root)
	}
	wantSubject, wantKey := desiredIssuer(c, inv.CA.Cert)

	for _, n := range nodes {
		row := NodeCert{
			ID: n.ID, Hostname: n.Hostname, Role: n.Role, State: n.State, Availability: n.Availability,
			Source: SourceUnknown,
		}
		if n.Down() {
			row.DownSince = n.StatusChangedAt
		}
		leaf, src, reason := pickLeaf(n, obs)
		if leaf != nil {
			row.Known, row.Cert, row.Source = true, Facts(leaf), src
		} else {
			row.Reason = reason
		}
		row.IssuerCurrent, row.IssuerKnown = issuerCurrent(leaf, n, wantSubject, wantKey)
		inv.Nodes = append(inv.Nodes, row)
	}
	sort.SliceStable(inv.Nodes, func(i, j int) bool {
		a, b := inv.Nodes[i], inv.Nodes[j]
		if (a.Role == RoleManager) != (b.Role == RoleManager) {
			return a.Role == RoleManager
		}
		if a.Hostname != b.Hostname {
			return a.Hostname < b.Hostname
		}
		return a.ID < b.ID
	})
	return inv
}

// pickLeaf applies the source order for one node.
func pickLeaf(n NodeInput, obs Observed) (*x509.Certificate, Source, string) {
	var reasons []string
	if obs.ControlErr != nil {
		reasons = append(reasons, "control API: "+obs.ControlErr.Error())
	} else if pemData, ok := obs.Control[n.ID]; !ok {
		reasons = append(reasons, "control API: node not listed")
	} else if len(pemData) == 0 {
		reasons = append(reasons, "control API: no certificate recorded yet (first manager before its first renewal)")
	} else if leaf, err := ParseCertificate(pemData); err != nil {
		reasons = append(reasons, "control API: "+err.Error())
	} else {
		return leaf, SourceControlAPI, ""
	}
	switch {
	case n.Role != RoleManager:
		reasons = append(reasons, "tls-probe: workers expose no TLS listener")
	case n.ManagerAddr == "":
		reasons = append(reasons, "tls-probe: manager address unknown")
	default:
		res, ok := obs.Probes[n.ID]
		switch {
		case !ok:
			reasons = append(reasons, "tls-probe: not attempted")
		case res.Err != nil:
			reasons = append(reasons, "tls-probe: "+res.Err.Error())
		case len(res.Chain) == 0:
			reasons = append(reasons, "tls-probe: no certificate presented")
		default:
			return res.Chain[0], SourceTLSProbe, ""
		}
	}
	return nil, SourceUnknown, strings.Join(reasons, "; ")
}

// desiredIssuer is the raw subject and SubjectPublicKeyInfo of the issuer node
// certificates should come from.
func desiredIssuer(c Cluster, root *x509.Certificate) (subject, key []byte) {
	if len(c.IssuerSubject) > 0 && len(c.IssuerPublicKey) > 0 {
		return c.IssuerSubject, c.IssuerPublicKey
	}
	if root != nil {
		return root.RawSubject, root.RawSubjectPublicKeyInfo
	}
	return nil, nil
}

// issuerCurrent judges whether the node's certificate comes from the desired
// issuer. The leaf itself is the best evidence (its issuer name and a
// signature check against the issuer's key); the node's reported TLSInfo is
// the fallback.
func issuerCurrent(leaf *x509.Certificate, n NodeInput, wantSubject, wantKey []byte) (current, known bool) {
	if len(wantSubject) == 0 || len(wantKey) == 0 {
		return false, false
	}
	if leaf != nil {
		if pub, err := x509.ParsePKIXPublicKey(wantKey); err == nil {
			issuer := &x509.Certificate{PublicKey: pub}
			ok := bytes.Equal(leaf.RawIssuer, wantSubject) &&
				issuer.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
			return ok, true
		}
	}
	if len(n.IssuerSubject) == 0 || len(n.IssuerPublicKey) == 0 {
		return false, false
	}
	return bytes.Equal(n.IssuerSubject, wantSubject) && bytes.Equal(n.IssuerPublicKey, wantKey), true
}

// trustPool builds a pool of every certificate in the trust root PEM.
func trustPool(pemData string) (*x509.CertPool, error) {
	certs, err := ParseCertificates([]byte(pemData))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
