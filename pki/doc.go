// Package pki owns swarmguard's view of the swarm's X.509 material: parsing the
// root CA and node certificates, reading every node's certificate from the best
// source available (the swarmkit control API, then a TLS handshake with each
// manager, otherwise "unknown" with the reason), validity windows, the expiry
// and CA decisions (the findings, with their severity), and CA rotation progress.
// It renders nothing: `report certs` is operator/certs' report, rendered by
// operator/report on that package's one status scale.
//
// Decisions are pure functions of what was read and an injected time; the I/O
// sits behind the small [CertLister] and [Prober] interfaces so that the
// inventory builder is tested with fakes. The package takes its own input types
// ([Cluster], [NodeInput]); the operator maps the Docker adapter's data into them.
// It never imports operator, the Docker SDK or Prometheus, and never reads,
// logs or renders a private key.
package pki
