// Package report is the compliance report's model and its renderers: checks, their evidence and statuses,
// the one report.fail_on gate (Fails), the gauges a report exports, and the table, JSON, Markdown, HTML and
// JUnit renderings. It knows no domain: each domain package builds its own checks from its own decision.
package report
