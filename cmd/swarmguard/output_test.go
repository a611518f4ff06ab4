package main

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Every --output file is owner-only unless it is a report, and a replaced file's stricter mode is kept;
// a report gets the umask's mode.
func TestOutputFileModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	tests := []struct {
		name     string
		report   bool
		existing fs.FileMode // 0: no file there before
		want     fs.FileMode
	}{
		{"credential output, new file", false, 0, 0o600},
		{"credential output replaces a 0644 file", false, 0o644, 0o600},
		{"credential output replaces a 0600 file", false, 0o600, 0o600},
		{"credential output keeps a stricter 0400", false, 0o400, 0o400},
		{"report, new file: the umask's mode", true, 0, 0o644},
		{"report keeps a replaced file's 0600", true, 0o600, 0o600},
		{"report replacing a 0666 file: the umask still applies", true, 0o666, 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := filepath.Join(dir, "out")
			if tt.existing != 0 {
				if err := os.WriteFile(f, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(f, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			a := &app{output: f}
			render := func(w io.Writer) error { _, err := io.WriteString(w, "SWMTKN-1-secret\n"); return err }
			write := a.writeOutput
			if tt.report {
				write = a.writeReport
			}
			if err := write(render); err != nil {
				t.Fatalf("write = %v", err)
			}
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.want {
				t.Errorf("mode = %o; want %o", got, tt.want)
			}
			if b, _ := os.ReadFile(f); tt.existing&0o400 != 0 && string(b) != "SWMTKN-1-secret\n" {
				t.Errorf("content = %q; want the new output", b)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".swarmguard-*")); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}
