package pki

// CertSample is one node certificate's metric values, for
// swarmguard_cert_not_after_timestamp_seconds{node,role} and
// swarmguard_cert_not_before_timestamp_seconds{node,role}.
type CertSample struct {
	Node      string // hostname, or the ID when the hostname is empty
	NodeID    string
	Role      string
	NotBefore float64 // Unix seconds
	NotAfter  float64 // Unix seconds
}

// MetricValues are the values the operator exports; pki does not import a
// metrics library. Nodes whose certificate is unknown have no sample: a
// missing series says "unknown", a made-up value would lie.
type MetricValues struct {
	Certs []CertSample
	// CANotAfter is swarmguard_ca_not_after_timestamp_seconds; CAKnown is
	// false when the trust root could not be read (export nothing then).
	CANotAfter float64
	CAKnown    bool
	// RotationInProgress is swarmguard_ca_rotation_in_progress (0 or 1).
	RotationInProgress float64
}

// Metrics extracts the metric values from an inventory.
func (inv Inventory) Metrics() MetricValues {
	var m MetricValues
	if inv.CA.Err == nil && !inv.CA.NotAfter.IsZero() {
		m.CANotAfter, m.CAKnown = float64(inv.CA.NotAfter.Unix()), true
	}
	if inv.RootRotationInProgress {
		m.RotationInProgress = 1
	}
	for _, n := range inv.Nodes {
		if !n.Known {
			continue
		}
		name := n.Hostname
		if name == "" {
			name = n.ID
		}
		m.Certs = append(m.Certs, CertSample{
			Node: name, NodeID: n.ID, Role: n.Role,
			NotBefore: float64(n.Cert.NotBefore.Unix()), NotAfter: float64(n.Cert.NotAfter.Unix()),
		})
	}
	return m
}
