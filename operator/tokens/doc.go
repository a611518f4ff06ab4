// Package tokens is the join-token domain: it decides from the ledger, the policy and now (Decide) when a
// worker or manager token is due, adopted or changed outside the ledger; rotates and records once per
// pass; publishes the tokens to Vault KV; and derives the report's tokens.age from the same decision.
package tokens
