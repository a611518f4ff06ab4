package swarm

import (
	"context"
	"errors"
	"fmt"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"

	"github.com/swarmguard/swarmguard/sensitive"
)

// CAState is the swarm's certificate authority as the Engine API shows it (one SwarmInspect).
type CAState struct {
	// TrustRootPEM is the root(s) nodes trust; during a root rotation it is still the old root.
	TrustRootPEM string
	// IssuerSubject and IssuerPublicKey name the issuer node certificates should come from: during a
	// rotation, the new CA (swarmkit's IssuerFromAPIRootCA).
	IssuerSubject          []byte
	IssuerPublicKey        []byte
	NodeCertExpiry         time.Duration
	RootRotationInProgress bool
	ForceRotate            uint64
	ExternalCAs            int
	Version                uint64
}

// CA reads the swarm's CA state.
func (c *Client) CA(ctx context.Context) (CAState, error) {
	sw, err := c.inspectSwarm(ctx)
	if err != nil {
		return CAState{}, err
	}
	return caStateFrom(sw), nil
}

func caStateFrom(sw swarmtypes.Swarm) CAState {
	return CAState{
		TrustRootPEM:           sw.TLSInfo.TrustRoot,
		IssuerSubject:          sw.TLSInfo.CertIssuerSubject,
		IssuerPublicKey:        sw.TLSInfo.CertIssuerPublicKey,
		NodeCertExpiry:         sw.Spec.CAConfig.NodeCertExpiry,
		RootRotationInProgress: sw.RootRotationInProgress,
		ForceRotate:            sw.Spec.CAConfig.ForceRotate,
		ExternalCAs:            len(sw.Spec.CAConfig.ExternalCAs),
		Version:                sw.Version.Index,
	}
}

// SetNodeCertExpiry sets Spec.CAConfig.NodeCertExpiry (compare-and-swap on the swarm version). It returns
// the value before and whether it wrote; a swarm already at d is left alone.
func (c *Client) SetNodeCertExpiry(ctx context.Context, d time.Duration) (before time.Duration, changed bool, err error) {
	if d < time.Hour {
		return 0, false, fmt.Errorf("node certificate expiry %s is below Swarm's minimum of 1h", d)
	}
	sw, err := c.updateSwarm(ctx, "setting the node certificate expiry", func(spec *swarmtypes.Spec, sw swarmtypes.Swarm) error {
		if sw.Spec.CAConfig.NodeCertExpiry == d {
			return errNoChange
		}
		spec.CAConfig.NodeCertExpiry = d
		return nil
	}, RotateFlags{})
	if err != nil {
		return 0, false, err
	}
	before = sw.Spec.CAConfig.NodeCertExpiry
	return before, before != d, nil
}

// RotateCAOptions asks for a root CA rotation.
type RotateCAOptions struct {
	// CertPEM and KeyPEM hand in the new root; both empty lets swarm generate one. Swarm refuses a
	// certificate valid for less than a year.
	CertPEM string
	KeyPEM  sensitive.Value
	// Force starts a new rotation even when one is in progress (which restarts it).
	Force bool
}

// RotateCAResult says what RotateCA did.
type RotateCAResult struct {
	// Started is true when this call bumped ForceRotate; false when it attached to a rotation already in
	// progress.
	Started bool
	// ForceRotate is the counter after the call.
	ForceRotate uint64
}

// ErrRotationInProgress is not returned to callers of RotateCA (they attach); it is exported so other
// paths (a scheduled rotation) can say why they did nothing.
var ErrRotationInProgress = errors.New("a root CA rotation is already in progress")

// RotateCA starts a root CA rotation by incrementing Spec.CAConfig.ForceRotate (and setting the signing
// cert and key when handed in), written with the version it read. When a rotation is already in progress
// and Force is false, it changes nothing and reports Started=false: bumping ForceRotate again would throw
// away the progress made and restart it.
func (c *Client) RotateCA(ctx context.Context, opts RotateCAOptions) (RotateCAResult, error) {
	if (opts.CertPEM == "") != opts.KeyPEM.IsZero() {
		return RotateCAResult{}, errors.New("a CA certificate and its key go together: give both or neither")
	}
	var res RotateCAResult
	_, err := c.updateSwarm(ctx, "rotating the root CA", func(spec *swarmtypes.Spec, sw swarmtypes.Swarm) error {
		if sw.RootRotationInProgress && !opts.Force {
			res = RotateCAResult{Started: false, ForceRotate: sw.Spec.CAConfig.ForceRotate}
			return errNoChange
		}
		spec.CAConfig.ForceRotate = sw.Spec.CAConfig.ForceRotate + 1
		if opts.CertPEM != "" {
			spec.CAConfig.SigningCACert = opts.CertPEM
			spec.CAConfig.SigningCAKey = opts.KeyPEM.Reveal()
		}
		res = RotateCAResult{Started: true, ForceRotate: spec.CAConfig.ForceRotate}
		return nil
	}, RotateFlags{})
	if err != nil {
		return RotateCAResult{}, err
	}
	return res, nil
}
