package externalca

import (
	"context"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/swarm"
)

type fakeCluster struct {
	cl  swarm.Cluster
	err error
}

func (f fakeCluster) Cluster(context.Context) (swarm.Cluster, error) { return f.cl, f.err }

func TestSwarmTrust(t *testing.T) {
	root := newCA(t, "swarm-ca")
	rootPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.cert.Raw}))
	good := swarm.Cluster{ID: swarmID, TrustRootPEM: rootPEM, NodeCertExpiry: 2160 * time.Hour}
	tr, err := SwarmTrust{fakeCluster{cl: good}}.Trust(t.Context())
	if err != nil || tr.SwarmID != swarmID || tr.NodeCertExpiry != 2160*time.Hour {
		t.Fatalf("Trust() = %+v, %v; want the swarm's ID and 2160h", tr, err)
	}
	mgr := nodeCert(t, root, managerID, ManagerOU, swarmID)
	if _, err := mgr.Verify(verifyOpts(tr)); err != nil {
		t.Errorf("a certificate of the swarm's root does not verify against Trust().Roots: %v", err)
	}
	cases := map[string]fakeCluster{
		"engine unreachable": {err: errors.New("inspecting swarm: unreachable")},
		"no ID":              {cl: swarm.Cluster{TrustRootPEM: rootPEM, NodeCertExpiry: time.Hour}},
		"no root":            {cl: swarm.Cluster{ID: swarmID, NodeCertExpiry: time.Hour}},
		"no expiry":          {cl: swarm.Cluster{ID: swarmID, TrustRootPEM: rootPEM}},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			if tr, err := (SwarmTrust{f}).Trust(t.Context()); err == nil || strings.TrimSpace(err.Error()) == "" {
				t.Errorf("Trust() = %+v, nil; want an error (a failed read is never an empty trust)", tr)
			}
		})
	}
}
