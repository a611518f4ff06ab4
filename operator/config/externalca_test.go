package config

import (
	"strings"
	"testing"
)

func TestValidateExternalCA(t *testing.T) {
	cases := []struct {
		name string
		set  func(e *ExternalCAConfig)
		want []string // every problem, exactly, by prefix
	}{
		{"defaults, off", func(*ExternalCAConfig) {}, nil},
		{"on with urls", func(e *ExternalCAConfig) {
			e.Enabled = true
			e.URLs = []string{"https://10.0.0.11:8555/api/v1/cfssl/sign", "https://mgr-2.internal:8555/api/v1/cfssl/sign"}
		}, nil},
		{"on without urls", func(e *ExternalCAConfig) { e.Enabled = true }, []string{"pki.external_ca.urls: is empty while pki.external_ca.enabled is true"}},
		{"listen without port", func(e *ExternalCAConfig) { e.Listen = "8555" }, []string{"pki.external_ca.listen: \"8555\" is not host:port"}},
		{"listen on port 0", func(e *ExternalCAConfig) { e.Listen = ":0" }, []string{"pki.external_ca.listen: \":0\" is not host:port with a fixed port"}},
		{"empty mount", func(e *ExternalCAConfig) { e.Mount = "" }, []string{"pki.external_ca.mount: is empty"}},
		{"role with a slash", func(e *ExternalCAConfig) { e.ManagerRole = "a/b" }, []string{"pki.external_ca.manager_role: \"a/b\" is not a Vault manager role name"}},
		{"one role for both", func(e *ExternalCAConfig) { e.WorkerRole = e.ManagerRole }, []string{"pki.external_ca.worker_role: \"swarm-manager\" is manager_role too"}},
		{"empty server role", func(e *ExternalCAConfig) { e.ServerRole = "" }, []string{"pki.external_ca.server_role: is empty"}},
		{"url not https", func(e *ExternalCAConfig) { e.URLs = []string{"http://10.0.0.11:8555/api/v1/cfssl/sign"} }, []string{"pki.external_ca.urls[0]: \"http://10.0.0.11:8555/api/v1/cfssl/sign\" is not an https URL"}},
		{"url with another path", func(e *ExternalCAConfig) { e.URLs = []string{"https://10.0.0.11:8555/sign"} }, []string{"pki.external_ca.urls[0]: \"https://10.0.0.11:8555/sign\" has path \"/sign\""}},
		{"url with another port", func(e *ExternalCAConfig) { e.URLs = []string{"https://10.0.0.11:9000/api/v1/cfssl/sign"} }, []string{"pki.external_ca.urls[0]: \"https://10.0.0.11:9000/api/v1/cfssl/sign\" names port \"9000\""}},
		{"url twice", func(e *ExternalCAConfig) {
			e.URLs = []string{"https://a:8555/api/v1/cfssl/sign", "https://a:8555/api/v1/cfssl/sign"}
		}, []string{"pki.external_ca.urls[1]: \"https://a:8555/api/v1/cfssl/sign\" is listed twice"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.set(&c.PKI.ExternalCA)
			ps := c.Validate()
			if len(ps) != len(tc.want) {
				t.Fatalf("Validate() = %v; want %v", ps, tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(ps[i].String(), w) {
					t.Errorf("problem %d = %q; want prefix %q", i, ps[i], w)
				}
			}
		})
	}
}
