package externalca

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/swarmguard/swarmguard/swarm"
)

// swarmCA is the part of the swarm adapter the trust source reads; *swarm.Client satisfies it.
type swarmCA interface {
	CA(ctx context.Context) (swarm.CAState, error)
	Cluster(ctx context.Context) (swarm.Cluster, error)
}

var _ swarmCA = (*swarm.Client)(nil)

// SwarmTrust reads the trust from the swarm at each request: its ID, its trusted roots and its
// node-certificate expiry policy.
type SwarmTrust struct{ Swarm swarmCA }

// Trust reads the swarm's ID, roots and node-certificate validity. A failed read is an error, never an
// empty trust.
func (s SwarmTrust) Trust(ctx context.Context) (Trust, error) {
	cl, err := s.Swarm.Cluster(ctx)
	if err != nil {
		return Trust{}, err
	}
	ca, err := s.Swarm.CA(ctx)
	if err != nil {
		return Trust{}, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca.TrustRootPEM)) {
		return Trust{}, errors.New("the swarm's trust root holds no certificate")
	}
	if cl.ID == "" {
		return Trust{}, errors.New("the swarm's ID is empty")
	}
	return Trust{SwarmID: cl.ID, Roots: pool, NodeCertExpiry: ca.NodeCertExpiry}, nil
}
