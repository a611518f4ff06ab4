package status

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
)

// View is the swarm as swarmguard sees it: `swarmguard status`.
type View struct {
	Swarm          Swarm    `json:"swarm"`
	Self           Self     `json:"self"`
	Nodes          []Node   `json:"nodes"`
	CA             CA       `json:"ca"`
	NodeCertExpiry string   `json:"node_cert_expiry"`
	Autolock       bool     `json:"autolock"`
	Ledger         []Ledger `json:"ledger"`
	// LedgerError is set when the ledger could not be read; the rest of the status still stands.
	LedgerError string `json:"ledger_error,omitempty"`
	// Lease is who acts now (holder empty: nobody); LeaseError is set when it could not be read.
	Lease      *operator.LeaseInfo `json:"lease,omitempty"`
	LeaseError string              `json:"lease_error,omitempty"`
}

// Swarm identifies the swarm.
type Swarm struct {
	ID                     string    `json:"id"`
	CreatedAt              time.Time `json:"created_at"`
	RootRotationInProgress bool      `json:"root_rotation_in_progress"`
	DataPathPort           uint32    `json:"data_path_port"`
	DefaultAddrPool        []string  `json:"default_addr_pool"`
}

// Self is the engine swarmguard talks to.
type Self struct {
	NodeID        string `json:"node_id"`
	Role          string `json:"role"`
	Host          string `json:"host"`
	EngineVersion string `json:"engine_version"`
	APIVersion    string `json:"api_version"`
}

// Node is one node.
type Node struct {
	ID            string `json:"id"`
	Hostname      string `json:"hostname"`
	Role          string `json:"role"`
	Leader        bool   `json:"leader"`
	State         string `json:"state"`
	Availability  string `json:"availability"`
	EngineVersion string `json:"engine_version"`
	Addr          string `json:"addr"`
	ManagerAddr   string `json:"manager_addr,omitempty"`
	Reachability  string `json:"reachability,omitempty"`
}

// CA is the swarm's root CA certificate.
type CA struct {
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

// Ledger is one ledger entry.
type Ledger struct {
	Kind    string            `json:"kind"`
	At      string            `json:"at"`
	Actor   string            `json:"actor"`
	Reason  string            `json:"reason"`
	Result  string            `json:"result"`
	Details map[string]string `json:"details,omitempty"`
}

// Read observes the swarm. A ledger that cannot be read is reported in LedgerError, not taken for empty.
func Read(ctx context.Context, sw operator.SwarmReader, host string, ledger operator.LedgerStore, lease operator.LeaseStore, leaseName string) (View, error) {
	self, err := sw.Check(ctx)
	if err != nil {
		return View{}, err
	}
	cl, err := sw.Cluster(ctx)
	if err != nil {
		return View{}, err
	}
	nodes, err := sw.Nodes(ctx)
	if err != nil {
		return View{}, err
	}
	st := View{
		Swarm: Swarm{ID: cl.ID, CreatedAt: cl.CreatedAt.UTC(), RootRotationInProgress: cl.RootRotationInProgress,
			DataPathPort: cl.DataPathPort, DefaultAddrPool: cl.DefaultAddrPool},
		Self:           Self{NodeID: self.NodeID, Role: self.Role, Host: host, EngineVersion: self.EngineVersion, APIVersion: self.APIVersion},
		Nodes:          make([]Node, 0, len(nodes)),
		NodeCertExpiry: config.Duration(cl.NodeCertExpiry).String(),
		Autolock:       cl.AutoLock,
		Ledger:         []Ledger{},
	}
	if st.Swarm.DefaultAddrPool == nil {
		st.Swarm.DefaultAddrPool = []string{}
	}
	for _, n := range nodes {
		st.Nodes = append(st.Nodes, Node{ID: n.ID, Hostname: n.Hostname, Role: n.Role, Leader: n.Leader, State: n.State,
			Availability: n.Availability, EngineVersion: n.EngineVersion, Addr: n.Addr, ManagerAddr: n.ManagerAddr, Reachability: n.Reachability})
	}
	ca, err := parseRoot(cl.TrustRootPEM)
	if err != nil {
		return View{}, fmt.Errorf("reading the swarm's root CA: %w", err)
	}
	st.CA = CA{Subject: ca.Subject.String(), Serial: ca.SerialNumber.Text(16), NotBefore: ca.NotBefore.UTC(), NotAfter: ca.NotAfter.UTC()}
	if ledger != nil {
		entries, err := ledger.Entries(ctx)
		if err != nil {
			st.LedgerError = err.Error()
		}
		for _, e := range entries {
			st.Ledger = append(st.Ledger, Ledger{Kind: e.Kind, At: e.At.UTC().Format(time.RFC3339), Actor: e.Actor, Reason: e.Reason, Result: e.Result, Details: e.Details})
		}
	}
	if lease != nil {
		li, err := operator.ReadLease(ctx, lease, leaseName)
		if err != nil {
			st.LeaseError = err.Error()
		} else {
			st.Lease = &li
		}
	}
	return st, nil
}

// parseRoot reads the first certificate of a PEM bundle.
func parseRoot(pemText string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("the trust root is not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}
