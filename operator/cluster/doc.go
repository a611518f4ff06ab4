// Package cluster holds the swarm-level reads of a report and the checks that belong to no single domain:
// CIS 7.1 (manager count), 7.2 (listen address), 7.4 (credentials in environment variables) and 7.9
// (data path separated).
package cluster
