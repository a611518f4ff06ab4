package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// outputFormat returns the --format value, checked against what the command offers (the first is the default).
func (a *app) outputFormat(allowed ...string) (string, error) {
	f := a.format
	if f == "" {
		return allowed[0], nil
	}
	for _, x := range allowed {
		if f == x {
			return f, nil
		}
	}
	return "", usageErr("--format %q is not one of %s", f, strings.Join(allowed, ", "))
}

// writeOutput writes what render produces to --output (atomically: a temporary file renamed into place,
// so a failed render never leaves half a report) or to stdout.
func (a *app) writeOutput(render func(io.Writer) error) error {
	if a.output == "" || a.output == "-" {
		return render(a.stdout)
	}
	dir := filepath.Dir(a.output)
	tmp, err := os.CreateTemp(dir, ".swarmguard-*")
	if err != nil {
		return failed(fmt.Errorf("writing --output %s: %w", a.output, err))
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := render(tmp); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return failed(fmt.Errorf("writing --output %s: %w", a.output, err))
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return failed(fmt.Errorf("writing --output %s: %w", a.output, err))
	}
	if err := os.Rename(tmp.Name(), a.output); err != nil {
		return failed(fmt.Errorf("writing --output %s: %w", a.output, err))
	}
	return nil
}

// writeTableOrJSON writes v as indented JSON when format is json, else as table renders it, through
// writeOutput (stdout or --output).
func (a *app) writeTableOrJSON(format string, v any, table func(io.Writer) error) error {
	return a.writeOutput(func(w io.Writer) error {
		if format == "json" {
			return writeJSON(w, v)
		}
		return table(w)
	})
}

// writeJSON renders v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
