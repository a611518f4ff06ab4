// Package incident is the ordered incident response: the plan (which steps, in which order, which are
// already done under an incident ID) and the run that takes each step through the domains' own code
// (tokens, autolock, certs, secret sync, the report), records each in the ledger under the incident's ID
// and resumes after an interruption. It holds no policy of its own steps: cmd hands it the actions.
package incident
