package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/swarm"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = "dev"
	commit  = ""
)

type versionInfo struct {
	Version       string `json:"version"`
	Commit        string `json:"commit"`
	GoVersion     string `json:"go_version"`
	Platform      string `json:"platform"`
	APIVersionMin string `json:"engine_api_min"`
	APIVersionMax string `json:"engine_api_max"`
}

func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Short:       "Print the version, commit, Go version and the Engine API range swarmguard speaks",
		Example:     "  swarmguard version\n  swarmguard version --format json",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"config": "none"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := a.outputFormat("table", "json")
			if err != nil {
				return err
			}
			v := versionInfo{Version: version, Commit: buildCommit(), GoVersion: runtime.Version(),
				Platform: runtime.GOOS + "/" + runtime.GOARCH, APIVersionMin: swarm.MinAPIVersion, APIVersionMax: swarm.MaxAPIVersion}
			return a.writeTableOrJSON(f, v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "swarmguard %s\ncommit:     %s\ngo:         %s (%s)\nengine api: %s to %s (negotiated with the daemon, never pinned)\n",
					v.Version, v.Commit, v.GoVersion, v.Platform, v.APIVersionMin, v.APIVersionMax)
				return err
			})
		},
	}
}
