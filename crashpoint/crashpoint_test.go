package crashpoint

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProductionBuildHasNoHook: the files of an ordinary build never name the hook's variable, so the
// production binary cannot carry it.
func TestProductionBuildHasNoHook(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.Dir}}|{{join .GoFiles " "}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	dir, files, _ := strings.Cut(strings.TrimSpace(string(out)), "|")
	if files == "" {
		t.Fatalf("go list named no files: %q", out)
	}
	for _, f := range strings.Fields(files) {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "SG_TEST_CRASH") {
			t.Errorf("%s, part of the default build, names SG_TEST_CRASH: the hook must stay behind the crashhook tag", f)
		}
	}
}
