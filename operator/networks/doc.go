// Package networks is the overlay network domain: each network's encryption verdict (EvaluateNetworks,
// shared by the task, its metrics and the report), the opt-in remediation to an encrypted twin, and the
// report's CIS 7.3, exemption, attachable, data-path and engine version checks.
package networks
