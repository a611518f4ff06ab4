package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
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

// writeOutput writes what render produces to --output or to stdout. The file is owner-only (0600, or the
// stricter mode of the file it replaces): any command's output may hold a credential (`rotate ... --show`)
// or name where one lives. Reports use writeReport.
func (a *app) writeOutput(render func(io.Writer) error) error {
	return a.writeOutputFile(render, true)
}

// writeReport is writeOutput for reports, which are meant to be shared: the file gets the mode the umask
// gives (0644 under the usual 022), or the stricter mode of the file it replaces.
func (a *app) writeReport(render func(io.Writer) error) error {
	return a.writeOutputFile(render, false)
}

// privateMode is the mode of an output file that may hold a credential.
const privateMode fs.FileMode = 0o600

// writeOutputFile writes atomically: a temporary file beside the target, created with its final mode
// (never readable by others, not even for a moment), renamed into place, so a failed render never leaves
// half a file and a reader never sees one.
func (a *app) writeOutputFile(render func(io.Writer) error, private bool) error {
	if a.output == "" || a.output == "-" {
		return render(a.stdout)
	}
	werr := func(err error) error { return failed(fmt.Errorf("writing --output %s: %w", a.output, err)) }
	// perm is what the file is created with; the umask can only narrow it (a report wants it applied).
	perm := fs.FileMode(0o666)
	if private {
		perm = privateMode
	}
	var keep fs.FileMode = 0o777 // bits an existing file allows
	if fi, err := os.Stat(a.output); err == nil && fi.Mode().IsRegular() {
		keep = fi.Mode().Perm()
	}
	tmp, err := createTemp(filepath.Dir(a.output), perm&keep)
	if err != nil {
		return werr(err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := render(tmp); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return werr(err)
	}
	if err := tmp.Close(); err != nil {
		return werr(err)
	}
	if err := os.Rename(tmp.Name(), a.output); err != nil {
		return werr(err)
	}
	return nil
}

// createTemp is os.CreateTemp with a mode: the file is created with perm (less the umask), not 0600.
func createTemp(dir string, perm fs.FileMode) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, ".swarmguard-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("no free temporary name in %s", dir)
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
