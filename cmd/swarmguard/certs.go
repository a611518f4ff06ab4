package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/certs"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// defaultCAWaitTimeout bounds `rotate ca --wait` unless --timeout says otherwise: long enough for a big
// swarm to renew in batches, short enough that a CI job does not hang on a node that is down.
const defaultCAWaitTimeout = 15 * time.Minute

// unavailableControl stands for a control socket that is configured but not there (the CLI run away from
// a manager, or the stack without the mount): every node then says why in its reason.
type unavailableControl struct{ err error }

func (u unavailableControl) NodeCertificates(context.Context) (map[string][]byte, error) {
	return nil, u.err
}

// pkiSources builds the certificate sources: the control socket when it exists, and the TLS probe.
func (a *app) pkiSources() pki.Sources {
	src := pki.Sources{Prober: &pki.TLSProber{}}
	sock := a.cfg.PKI.ControlSocket
	switch _, err := os.Stat(sock); {
	case sock == "":
		src.Control = unavailableControl{pki.ErrNoControlAPI}
	case err != nil:
		src.Control = unavailableControl{fmt.Errorf("control socket %s not found (run on a manager, or set pki.control_socket)", sock)}
	default:
		src.Control = &pki.ControlClient{Socket: sock}
	}
	return src
}

func newReportCertsCmd(a *app) *cobra.Command {
	var failOn string
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Every node's certificate, the root CA and the certificate findings",
		Long: `Reads the root CA and every node's certificate: from the swarmkit control API (pki.control_socket,
all nodes) when reachable, else by a TLS handshake with each manager (verified against the trust root),
else "unknown" with the reason. Findings follow the pki.* policy and land in three checks (pki.node-certs,
pki.down-nodes, pki.cluster) on the same status scale as ` + "`swarmguard report`" + ` (pass, info, warn, fail,
error), rendered by the same renderers.

Formats: table (default), json, markdown, html, junit (one test case per check).

Exit status: 1 when a check is at or above --fail-on (warn: warn, fail or error; fail: fail or error;
none: never); --fail-on defaults to report.fail_on, and with neither set only a check that could not be
evaluated fails.`,
		Example: `  swarmguard report certs
  swarmguard report certs --format json | jq '.nodes[] | {hostname, not_after, source}'
  swarmguard report certs --format html --output certs.html
  swarmguard report certs --format junit --output certs.xml --fail-on warn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := a.outputFormat(report.Formats...)
			if err != nil {
				return err
			}
			gate, err := a.failOnGate(cmd, failOn)
			if err != nil {
				return err
			}
			c, _, err := a.engine(cmd.Context())
			if err != nil {
				return err
			}
			r, err := certs.Report(cmd.Context(), c, a.pkiSources(), a.cfg.PKI, time.Now())
			if err != nil {
				return failed(fmt.Errorf("reading certificates: %w", err))
			}
			if err := a.writeReport(func(w io.Writer) error { return r.Render(w, f) }); err != nil {
				return err
			}
			if r.Fails(gate) {
				return failed(fmt.Errorf("certificate findings reach --fail-on %s (worst: %s)", gateName(gate), r.Worst()))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&failOn, "fail-on", "", "exit 1 when a finding is at or above this status: warn, fail or none (default report.fail_on)")
	return cmd
}

type rotateCAFlags struct {
	reason   string
	dryRun   bool
	certFile string
	keyFile  string
	wait     bool
	timeout  time.Duration
	force    bool
}

func newRotateCACmd(a *app) *cobra.Command {
	var fl rotateCAFlags
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Rotate the swarm's root CA and follow it until every node is on the new root",
		Long: `Starts a root CA rotation (Swarm generates the new root, or give --cert and --key). When a rotation is
already in progress it attaches to it instead: bumping ForceRotate again would restart it (--force does
exactly that). With --wait it follows the rotation live: nodes on the new root out of the total, the
pending ones, and a warning when nothing moved for a minute; on --timeout it exits 1 naming every pending
node and whether it is down. Every start and every followed outcome is recorded in the ledger (kind ca).`,
		Example: `  swarmguard rotate ca --reason "yearly rotation" --wait
  swarmguard rotate ca --dry-run
  swarmguard rotate ca --cert new-root.pem --key new-root-key.pem --wait --timeout 10m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.rotateCA(cmd.Context(), fl) },
	}
	f := cmd.Flags()
	f.StringVar(&fl.reason, "reason", "", "why, recorded in the ledger")
	f.BoolVar(&fl.dryRun, "dry-run", false, "say what would be done, change nothing")
	f.StringVar(&fl.certFile, "cert", "", "PEM file of the new root CA certificate (valid for at least a year); needs --key")
	f.StringVar(&fl.keyFile, "key", "", "PEM file of the new root CA's private key; needs --cert")
	f.BoolVar(&fl.wait, "wait", false, "follow the rotation until every node is on the new root")
	f.DurationVar(&fl.timeout, "timeout", defaultCAWaitTimeout, "with --wait: give up (exit 1) after this long")
	f.BoolVar(&fl.force, "force", false, "start a new rotation even when one is in progress (restarts it)")
	return cmd
}

func (a *app) rotateCA(ctx context.Context, fl rotateCAFlags) error {
	opts, err := readCAFiles(fl.certFile, fl.keyFile)
	if err != nil {
		return err
	}
	opts.Force = fl.force
	if fl.timeout <= 0 {
		return usageErr("--timeout %s must be positive", fl.timeout)
	}
	c, _, err := a.engine(ctx)
	if err != nil {
		return err
	}
	ledger := a.ledger(c)
	reason := fl.reason
	if reason == "" {
		reason = "manual rotation"
	}
	env := operator.TaskEnv{DryRun: fl.dryRun, Actor: actor(), Reason: reason, Log: a.log, Now: time.Now, Out: a.stdout}
	var start certs.CARotationStart
	err = a.hold(ctx, "rotate ca", env, func(ctx context.Context, env operator.TaskEnv) error {
		var err error
		start, err = certs.StartCARotation(ctx, c, ledger, opts, env)
		return err
	})
	if err != nil {
		return failed(err)
	}
	if fl.dryRun {
		if start.Plan == nil {
			return nil
		}
		return a.writePlan("table", *start.Plan)
	}
	switch {
	case start.Attached:
		fmt.Fprintf(a.stdout, "attached to the root CA rotation in progress (ForceRotate %d)\n", start.ForceRotate)
	default:
		fmt.Fprintf(a.stdout, "started a root CA rotation (ForceRotate %d)\n", start.ForceRotate)
	}
	if !fl.wait {
		fmt.Fprintln(a.stdout, "follow it with: swarmguard rotate ca --wait")
		return nil
	}
	// The follow only reads (and records its outcome in the ledger, by compare-and-swap): it runs without
	// the lease, so the controller goes on meanwhile. Republishing the tokens writes Vault: it takes the
	// lease again and reads the tokens under it, so a rotation and publish by the controller in between is
	// never overwritten with the tokens read before.
	err = certs.FollowCARotation(ctx, c, ledger, start, certs.FollowOptions{Timeout: fl.timeout, Progress: caFollowPrinter(a.stdout)}, env)
	if err != nil {
		return failed(err)
	}
	if republish := a.tokens(c, ledger).Republisher(); republish != nil {
		err = a.hold(ctx, "rotate ca: republish join tokens", env, republish)
		if err != nil {
			return failed(fmt.Errorf("the root CA rotation completed, but %w; the controller's tokens pass retries it", err))
		}
	}
	return nil
}

// caFollowPrinter prints what the root CA follow tells as it goes: each reading that moved, a stall, the end.
func caFollowPrinter(w io.Writer) func(certs.CAFollowEvent) {
	return func(ev certs.CAFollowEvent) {
		switch {
		case ev.Done:
			fmt.Fprintf(w, "root CA rotation complete: %d/%d nodes on the new root (%s) in %s\n", ev.Progress.OnNewRoot, ev.Progress.Total, ev.Root, ev.Elapsed)
		case ev.Stalled:
			fmt.Fprintf(w, "[%s] warning: no progress for %s; %s (a node that is down holds the rotation until it returns)\n",
				ev.Elapsed, ev.StillFor, certs.PendingText(ev.Progress))
		default:
			fmt.Fprintf(w, "[%s] %s\n", ev.Elapsed, certs.PendingText(ev.Progress))
		}
	}
}

// readCAFiles reads --cert and --key. The key is held as sensitive.Value from the moment it is read, and
// no message ever includes its content.
func readCAFiles(certFile, keyFile string) (swarm.RotateCAOptions, error) {
	if (certFile == "") != (keyFile == "") {
		return swarm.RotateCAOptions{}, usageErr("--cert and --key go together: give both or neither")
	}
	if certFile == "" {
		return swarm.RotateCAOptions{}, nil
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return swarm.RotateCAOptions{}, usageErr("--cert: %v", err)
	}
	cert, err := pki.ParseCertificate(certPEM)
	if err != nil {
		return swarm.RotateCAOptions{}, usageErr("--cert %s: %v", certFile, err)
	}
	if !cert.IsCA {
		return swarm.RotateCAOptions{}, usageErr("--cert %s: %s is not a CA certificate", certFile, cert.Subject)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return swarm.RotateCAOptions{}, usageErr("--key: %v", err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || !strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return swarm.RotateCAOptions{}, usageErr("--key %s: not a PEM private key", keyFile)
	}
	return swarm.RotateCAOptions{CertPEM: string(certPEM), KeyPEM: sensitive.New(string(keyPEM))}, nil
}
