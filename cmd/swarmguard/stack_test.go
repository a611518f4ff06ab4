package main

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The stack swarmguard ships puts its service on an encrypted overlay network only, so that swarmguard's
// own CIS 7.3 check (every overlay network encrypted) passes on the stack that runs it.
func TestStackNetworkEncrypted(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "charts", "swarmguard", "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var stack struct {
		Services map[string]struct {
			Networks any `yaml:"networks"`
		} `yaml:"services"`
		Networks map[string]struct {
			Driver     string            `yaml:"driver"`
			DriverOpts map[string]string `yaml:"driver_opts"`
			External   bool              `yaml:"external"`
		} `yaml:"networks"`
	}
	if err := yaml.Unmarshal(b, &stack); err != nil {
		t.Fatalf("stack.yml: %v", err)
	}
	for name, svc := range stack.Services {
		used := []string{"default"} // a service that names none is on the stack's default network
		switch n := svc.Networks.(type) {
		case []any:
			used = used[:0]
			for _, x := range n {
				used = append(used, x.(string))
			}
		case map[string]any:
			used = used[:0]
			for k := range n {
				used = append(used, k)
			}
		}
		for _, nw := range used {
			def, ok := stack.Networks[nw]
			if !ok {
				t.Errorf("service %s is on network %q, which stack.yml does not define: docker makes it an unencrypted overlay", name, nw)
				continue
			}
			if def.External || def.Driver != "overlay" || def.DriverOpts["encrypted"] != "true" {
				t.Errorf("network %q = %+v; want driver overlay with driver_opts encrypted: \"true\"", nw, def)
			}
		}
	}
}
