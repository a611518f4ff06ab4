package operator

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
)

// Status is the swarm as swarmguard sees it: `swarmguard status`.
type Status struct {
	Swarm          StatusSwarm    `json:"swarm"`
	Self           StatusSelf     `json:"self"`
	Nodes          []StatusNode   `json:"nodes"`
	CA             StatusCA       `json:"ca"`
	NodeCertExpiry string         `json:"node_cert_expiry"`
	Autolock       bool           `json:"autolock"`
	Ledger         []StatusLedger `json:"ledger"`
	// LedgerError is set when the ledger could not be read; the rest of the status still stands.
	LedgerError string `json:"ledger_error,omitempty"`
	// Lease is who acts now (holder empty: nobody); LeaseError is set when it could not be read.
	Lease      *LeaseInfo `json:"lease,omitempty"`
	LeaseError string     `json:"lease_error,omitempty"`
}

// StatusSwarm identifies the swarm.
type StatusSwarm struct {
	ID                     string    `json:"id"`
	CreatedAt              time.Time `json:"created_at"`
	RootRotationInProgress bool      `json:"root_rotation_in_progress"`
	DataPathPort           uint32    `json:"data_path_port"`
	DefaultAddrPool        []string  `json:"default_addr_pool"`
}

// StatusSelf is the engine swarmguard talks to.
type StatusSelf struct {
	NodeID        string `json:"node_id"`
	Role          string `json:"role"`
	Host          string `json:"host"`
	EngineVersion string `json:"engine_version"`
	APIVersion    string `json:"api_version"`
}

// StatusNode is one node.
type StatusNode struct {
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

// StatusCA is the swarm's root CA certificate.
type StatusCA struct {
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

// StatusLedger is one ledger entry.
type StatusLedger struct {
	Kind    string            `json:"kind"`
	At      string            `json:"at"`
	Actor   string            `json:"actor"`
	Reason  string            `json:"reason"`
	Result  string            `json:"result"`
	Details map[string]string `json:"details,omitempty"`
}

// ReadStatus observes the swarm. A ledger that cannot be read is reported in LedgerError, not taken for empty.
func ReadStatus(ctx context.Context, sw SwarmReader, host string, ledger LedgerStore, lease LeaseStore, leaseName string) (Status, error) {
	self, err := sw.Check(ctx)
	if err != nil {
		return Status{}, err
	}
	cl, err := sw.Cluster(ctx)
	if err != nil {
		return Status{}, err
	}
	nodes, err := sw.Nodes(ctx)
	if err != nil {
		return Status{}, err
	}
	st := Status{
		Swarm: StatusSwarm{ID: cl.ID, CreatedAt: cl.CreatedAt.UTC(), RootRotationInProgress: cl.RootRotationInProgress,
			DataPathPort: cl.DataPathPort, DefaultAddrPool: cl.DefaultAddrPool},
		Self:           StatusSelf{NodeID: self.NodeID, Role: self.Role, Host: host, EngineVersion: self.EngineVersion, APIVersion: self.APIVersion},
		Nodes:          make([]StatusNode, 0, len(nodes)),
		NodeCertExpiry: config.Duration(cl.NodeCertExpiry).String(),
		Autolock:       cl.AutoLock,
		Ledger:         []StatusLedger{},
	}
	if st.Swarm.DefaultAddrPool == nil {
		st.Swarm.DefaultAddrPool = []string{}
	}
	for _, n := range nodes {
		st.Nodes = append(st.Nodes, StatusNode{ID: n.ID, Hostname: n.Hostname, Role: n.Role, Leader: n.Leader, State: n.State,
			Availability: n.Availability, EngineVersion: n.EngineVersion, Addr: n.Addr, ManagerAddr: n.ManagerAddr, Reachability: n.Reachability})
	}
	ca, err := parseRoot(cl.TrustRootPEM)
	if err != nil {
		return Status{}, fmt.Errorf("reading the swarm's root CA: %w", err)
	}
	st.CA = StatusCA{Subject: ca.Subject.String(), Serial: ca.SerialNumber.Text(16), NotBefore: ca.NotBefore.UTC(), NotAfter: ca.NotAfter.UTC()}
	if ledger != nil {
		entries, err := ledger.Entries(ctx)
		if err != nil {
			st.LedgerError = err.Error()
		}
		for _, e := range entries {
			st.Ledger = append(st.Ledger, StatusLedger{Kind: e.Kind, At: e.At.UTC().Format(time.RFC3339), Actor: e.Actor, Reason: e.Reason, Result: e.Result, Details: e.Details})
		}
	}
	if lease != nil {
		li, err := ReadLease(ctx, lease, leaseName)
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
