// Package config is swarmguard's configuration model: the Config tree with its defaults (DefaultConfig), the
// strict decoding of a parsed YAML document (DecodeConfig: unknown keys and wrong types are problems, each
// naming its key), the cross-field validation (Validate, FileProblems), the cron and window syntaxes, and
// the audit event names webhooks subscribe to. It reads no files itself: cmd hands it what it parsed.
package config
