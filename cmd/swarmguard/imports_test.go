package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection enforces DESIGN.md's import rules: cmd -> operator(/...) -> {swarm, secrets, pki}; those
// three never import operator (or cmd), and sensitive, crashpoint and guard import nothing of ours; the runtime in operator/
// imports no domain package; report and config know no domain; only compliance (the report's assembly) and
// cmd import every domain, and a domain imports no other domain; only swarm imports the Docker SDK; only
// secrets imports Vault's; only cmd imports viper and cobra.
func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}", "github.com/swarmguard/swarmguard/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/swarmguard/swarmguard/"
	owner := map[string]string{ // import prefix -> the only package allowed to import it
		"github.com/moby/moby/client":    "swarm",
		"github.com/hashicorp/vault/api": "secrets",
		"github.com/spf13/viper":         "cmd/swarmguard",
		"github.com/spf13/cobra":         "cmd/swarmguard",
		"github.com/moby/swarmkit/v2":    "pki",
		"github.com/docker/docker":       "-", // frozen at v28.5.2; use github.com/moby/moby/client
		"github.com/pkg/errors":          "-",
	}
	domains := map[string]bool{}
	for _, d := range []string{"tokens", "autolock", "certs", "networks", "secretsync", "workloads", "externalca", "incident"} {
		domains["operator/"+d] = true
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "|")
		rel := strings.TrimPrefix(pkg, mod)
		if rel == "integration" || strings.HasPrefix(rel, "integration/") {
			continue // tests and lab tools may use anything
		}
		checked++
		for _, imp := range strings.Fields(imports) {
			for prefix, allowed := range owner {
				if strings.HasPrefix(imp, prefix) && rel != allowed {
					t.Errorf("%s imports %s; only %s may", rel, imp, allowed)
				}
			}
			if strings.HasPrefix(imp, mod) {
				dep := strings.TrimPrefix(imp, mod)
				inOperator := rel == "operator" || strings.HasPrefix(rel, "operator/")
				switch {
				case dep == "cmd/swarmguard":
					t.Errorf("%s imports cmd", rel)
				case rel == "sensitive" || rel == "crashpoint" || rel == "guard":
					t.Errorf("%s imports %s; it is a leaf", rel, dep)
				case (dep == "operator" || strings.HasPrefix(dep, "operator/")) && !inOperator && rel != "cmd/swarmguard":
					t.Errorf("%s imports %s; only cmd and operator's own packages may", rel, dep)
				case domains[dep] && (rel == "operator" || rel == "operator/report" || rel == "operator/config" || rel == "operator/cluster"):
					t.Errorf("%s imports the domain %s; it must know no domain", rel, dep)
				case domains[dep] && domains[rel]:
					t.Errorf("domain %s imports domain %s; cmd or compliance connects them", rel, dep)
				}
			}
		}
	}
	if checked < 4 {
		t.Fatalf("checked %d packages; want the whole module", checked)
	}
}
