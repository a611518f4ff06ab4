package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultHealthURL is where `swarmguard run` answers with the default listen address.
const defaultHealthURL = "http://127.0.0.1:9323/healthz"

func newHealthCmd(a *app) *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Probe /healthz of a running swarmguard (the healthcheck of the FROM-scratch image)",
		Long: `health asks a running swarmguard whether it is alive and exits 0 when /healthz answers 200, 1 otherwise.
The image has no shell and no curl, so the stack's healthcheck runs this. It reads no configuration.`,
		Example: `  swarmguard health
  swarmguard health --url http://127.0.0.1:9323/readyz`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"config": "none"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
				return usageErr("--url %q is not an http(s) URL (example: %s)", url, defaultHealthURL)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return usageErr("--url %q: %v", url, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return failed(fmt.Errorf("unhealthy: %w (is swarmguard run listening there?)", err))
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			if resp.StatusCode != http.StatusOK {
				return failed(fmt.Errorf("unhealthy: %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body))))
			}
			_, err = a.stdout.Write(body)
			return err
		},
	}
	cmd.Flags().StringVar(&url, "url", defaultHealthURL, "the endpoint to probe")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}
