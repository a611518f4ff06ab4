package externalca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/swarmguard/swarmguard/swarm"
)

// swarmCluster is the part of the swarm adapter the trust source reads; *swarm.Client satisfies it.
type swarmCluster interface {
	Cluster(ctx context.Context) (swarm.Cluster, error)
}

var _ swarmCluster = (*swarm.Client)(nil)

// SwarmTrust reads the trust from the swarm at each request (one SwarmInspect): its ID, its trusted roots
// and its node-certificate expiry policy.
type SwarmTrust struct{ Swarm swarmCluster }

// Trust reads the swarm's ID, roots and node-certificate validity. A failed read is an error, never an
// empty trust.
func (s SwarmTrust) Trust(ctx context.Context) (Trust, error) {
	cl, err := s.Swarm.Cluster(ctx)
	if err != nil {
		return Trust{}, err
	}
	if cl.ID == "" {
		return Trust{}, errors.New("the swarm's ID is empty")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cl.TrustRootPEM)) {
		return Trust{}, fmt.Errorf("the trust root of swarm %s holds no certificate", cl.ID)
	}
	if cl.NodeCertExpiry <= 0 {
		return Trust{}, fmt.Errorf("swarm %s has no node certificate expiry", cl.ID)
	}
	return Trust{SwarmID: cl.ID, Roots: pool, NodeCertExpiry: cl.NodeCertExpiry}, nil
}
