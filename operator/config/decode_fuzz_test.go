package config

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzDecodeConfig: any YAML a person (or an attacker who can write the config) gives decodes into a
// configuration or a list of problems, each naming a key, and validation never panics on the result.
func FuzzDecodeConfig(f *testing.F) {
	f.Add("listen: \":9323\"\ntokens: {worker: {max_age: 720h}, schedule: \"@every 1h\"}\n")
	f.Add("vault: {address: http://v:8200, auth: {method: approle, role_id_file: /r, secret_id_file: /s}}\nsecrets:\n  hmac_key_file: /k\n  mappings:\n    - {name: db, from: {path: secret/db, key: pw}, keep_versions: 2}\n")
	f.Add("notify: {webhooks: [{url: https://h, events: [action], secret_file: /k, timeout: 5s}]}\n")
	f.Add("tokens: {worker: {max_age: 3x}, bogus: 1}\nlisten: [1, 2]\n")
	f.Add("pki: {warn_before: 101%, critical_before: -1h, ca: {max_age: 9999999999999h}}\n")
	f.Add("secrets: {mappings: [1, {name: [x]}, null]}\n")
	f.Add("1: 2\n? [a]\n: b\n")
	f.Add("networks: {exempt: {a: b}}\nledger: {max_per_kind: 1e99}\n")
	f.Fuzz(func(t *testing.T, text string) {
		var raw map[string]any
		if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
			return
		}
		cfg, probs := DecodeConfig(DefaultConfig(), raw)
		for _, p := range probs {
			if p.Key == "" || strings.TrimSpace(p.Msg) == "" {
				t.Fatalf("problem %+v does not name a key and say what is wrong", p)
			}
		}
		for _, p := range cfg.Validate() {
			if p.Key == "" {
				t.Fatalf("validation problem %+v names no key", p)
			}
		}
	})
}
