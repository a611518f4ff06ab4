// Package autolock is the autolock domain: autolock on, the unlock key's rotation by age
// (DecideUnlockKey), its escrow to Vault before a step counts as done, one ledger write per pass, and the
// report's CIS 7.5, 7.6 and autolock.escrow checks derived from the same decision.
package autolock
