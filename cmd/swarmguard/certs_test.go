package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotateCAUsage(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(notPEM, []byte("not a pem file, and a secret-looking line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"rotate", "ca", "--cert", notPEM}, "--cert and --key go together"},
		{"key without cert", []string{"rotate", "ca", "--key", notPEM}, "--cert and --key go together"},
		{"cert not PEM", []string{"rotate", "ca", "--cert", notPEM, "--key", notPEM}, "no PEM certificate found"},
		{"missing cert file", []string{"rotate", "ca", "--cert", filepath.Join(dir, "nope"), "--key", notPEM}, "--cert:"},
		{"unknown flag", []string{"rotate", "ca", "--bogus"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(dir, "no.sock"))
			var out, errb bytes.Buffer
			code := Main(t.Context(), tt.args, strings.NewReader(""), &out, &errb)
			if code != ExitUsage || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("swarmguard %v = exit %d, stderr %q; want exit 2 and %q", tt.args, code, errb.String(), tt.want)
			}
			if strings.Contains(out.String()+errb.String(), "secret-looking") {
				t.Errorf("output echoes the key file's content")
			}
		})
	}
}

func TestCertsCommandsHaveExamples(t *testing.T) {
	a := &app{}
	for _, cmd := range []struct{ use, example string }{
		{newReportCertsCmd(a).Use, newReportCertsCmd(a).Example},
		{newRotateCACmd(a).Use, newRotateCACmd(a).Example},
	} {
		if cmd.example == "" {
			t.Errorf("%s has no example", cmd.use)
		}
	}
}

func TestPKISources(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "control.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, socket, wantErr string
	}{
		{"present", sock, ""},
		{"missing", filepath.Join(dir, "nope.sock"), "not found (run on a manager, or set pki.control_socket)"},
		{"unset", "", "control API not configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{}
			a.cfg.PKI.ControlSocket = tt.socket
			src := a.pkiSources()
			if src.Prober == nil {
				t.Errorf("no TLS prober")
			}
			u, isMissing := src.Control.(unavailableControl)
			switch {
			case tt.wantErr == "" && isMissing:
				t.Errorf("Control = unavailable (%v); want the control client", u.err)
			case tt.wantErr != "" && (!isMissing || !strings.Contains(u.err.Error(), tt.wantErr)):
				t.Errorf("Control = %#v; want unavailable with %q", src.Control, tt.wantErr)
			}
		})
	}
}
