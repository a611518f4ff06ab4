package pki

import (
	"bytes"
	"sort"
)

// PendingNode is a node whose certificate (or trust root) is not yet on the
// new root.
type PendingNode struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Role     string `json:"role"`
	State    string `json:"state"`
	Down     bool   `json:"down"`
	// Cert is true while the node's certificate is not from the new issuer;
	// otherwise only its trust root is behind.
	Cert bool `json:"cert_pending"`
}

// RotationProgress is how far a root CA rotation has come, as Docker's own
// `docker swarm ca --rotate` progress judges it: a node is on the new root
// when the issuer in its Description.TLSInfo equals the cluster's desired
// issuer, and it trusts the new root when its trust root equals the
// cluster's. The rotation is done when swarm says it no longer runs and every
// node has both.
type RotationProgress struct {
	InProgress bool          `json:"in_progress"`
	Total      int           `json:"total"`
	OnNewRoot  int           `json:"on_new_root"` // certificates from the desired issuer
	TrustsRoot int           `json:"trusts_root"` // trust root equals the cluster's
	Pending    []PendingNode `json:"pending"`     // sorted by hostname, then ID
	Done       bool          `json:"done"`
}

// Progress computes the rotation progress from the cluster and its nodes.
func Progress(c Cluster, nodes []NodeInput) RotationProgress {
	var root []byte
	if r, err := ParseCertificate([]byte(c.TrustRootPEM)); err == nil {
		root = r.Raw
	}
	subject, key := c.IssuerSubject, c.IssuerPublicKey
	if len(subject) == 0 || len(key) == 0 {
		if r, err := ParseCertificate([]byte(c.TrustRootPEM)); err == nil {
			subject, key = r.RawSubject, r.RawSubjectPublicKeyInfo
		}
	}
	p := RotationProgress{InProgress: c.RootRotationInProgress, Total: len(nodes)}
	for _, n := range nodes {
		certOK := len(key) > 0 && bytes.Equal(n.IssuerSubject, subject) && bytes.Equal(n.IssuerPublicKey, key)
		rootOK := sameRoot(n.TrustRootPEM, c.TrustRootPEM, root)
		if certOK {
			p.OnNewRoot++
		}
		if rootOK {
			p.TrustsRoot++
		}
		if !certOK || (!c.RootRotationInProgress && !rootOK) {
			p.Pending = append(p.Pending, PendingNode{
				ID: n.ID, Hostname: n.Hostname, Role: n.Role, State: n.State, Down: n.Down(), Cert: !certOK,
			})
		}
	}
	sort.Slice(p.Pending, func(i, j int) bool {
		if p.Pending[i].Hostname != p.Pending[j].Hostname {
			return p.Pending[i].Hostname < p.Pending[j].Hostname
		}
		return p.Pending[i].ID < p.Pending[j].ID
	})
	p.Done = !c.RootRotationInProgress && p.OnNewRoot == p.Total && p.TrustsRoot == p.Total
	return p
}

// sameRoot compares trust roots by the DER of their first certificate, so
// that PEM whitespace differences do not count; it falls back to the text.
func sameRoot(nodePEM, clusterPEM string, clusterRoot []byte) bool {
	if nodePEM == clusterPEM {
		return true
	}
	if clusterRoot == nil {
		return false
	}
	r, err := ParseCertificate([]byte(nodePEM))
	return err == nil && bytes.Equal(r.Raw, clusterRoot)
}

// Moved reports whether progress advanced from prev to cur: more nodes on
// the new root or trusting it, or the rotation finished. It drives the stall
// warning of `rotate ca --wait`.
func Moved(prev, cur RotationProgress) bool {
	return cur.OnNewRoot != prev.OnNewRoot || cur.TrustsRoot != prev.TrustsRoot ||
		cur.Done != prev.Done || cur.InProgress != prev.InProgress || cur.Total != prev.Total
}
