// Package certs is the certificate and root CA domain: every node's certificate (inventory, findings,
// metrics), the node certificate expiry policy, the CA age policy (DecideCA, shared by the scheduled
// rotation and the report), the rotation followed to completion (FollowCARotation, shared with rotate ca
// --wait), and the report's CIS 7.7, 7.8, key strength, node certificate and down node checks.
package certs
