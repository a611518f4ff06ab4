package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection enforces DESIGN.md's import rules: cmd -> operator -> {swarm, secrets, pki}; those
// three never import operator (or cmd); only swarm imports the Docker SDK; only secrets imports Vault's;
// only cmd imports viper and cobra.
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
				switch {
				case dep == "cmd/swarmguard":
					t.Errorf("%s imports cmd", rel)
				case dep == "operator" && rel != "cmd/swarmguard":
					t.Errorf("%s imports operator; only cmd may", rel)
				}
			}
		}
	}
	if checked < 4 {
		t.Fatalf("checked %d packages; want the whole module", checked)
	}
}
