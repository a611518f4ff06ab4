package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/autolock"
	"github.com/swarmguard/swarmguard/operator/certs"
	"github.com/swarmguard/swarmguard/operator/incident"
	"github.com/swarmguard/swarmguard/operator/secretsync"
	"github.com/swarmguard/swarmguard/operator/tokens"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

type incidentFlags struct {
	id        string
	scope     string
	secrets   []string
	reason    string
	dryRun    bool
	caTimeout time.Duration
}

func newIncidentCmd(a *app) *cobra.Command {
	var fl incidentFlags
	cmd := &cobra.Command{
		Use:   "incident --reason TEXT",
		Short: "The ordered incident response: join tokens, unlock key, root CA, leaked secrets, then the report",
		Long: `One ordered response, under the lease for its whole length: the worker and manager join tokens first (no
new joins), the unlock key next (escrowed to Vault before it counts; skipped when autolock is off), then a
root CA rotation followed to completion (the published join tokens are republished at its end), then a
resync of the --secret mappings with their rollouts (change them at the source first), then the compliance
report. Each step is recorded in the ledger under the incident's ID (kind incident). A rerun with the same
--id skips the steps already done and says so: after a kill, a lost lease or a failed step, run it again.
A CA step that timed out follows, when resumed, the rotation it started (in progress or finished since)
and never starts another.
--dry-run prints the plan and changes nothing.`,
		Example: `  swarmguard incident --reason "INC-42: manager disk image leaked" --secret db_password
  swarmguard incident --scope tokens,ca --reason "token in a public CI log" --dry-run --format json
  swarmguard incident --id inc-20261202-031500-ab12 --reason "INC-42: manager disk image leaked"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runIncident(cmd.Context(), fl) },
	}
	f := cmd.Flags()
	f.StringVar(&fl.id, "id", "", "incident ID: resume this incident (default: a new one, printed first)")
	f.StringVar(&fl.scope, "scope", "", "steps to take, comma separated: tokens,unlock-key,ca,secrets (default: all)")
	f.StringArrayVar(&fl.secrets, "secret", nil, "a secret mapping to resync (repeat for more); needs scope secrets")
	f.StringVar(&fl.reason, "reason", "", "why (required), recorded in the ledger")
	f.BoolVar(&fl.dryRun, "dry-run", false, "print the plan, change nothing")
	f.DurationVar(&fl.caTimeout, "ca-timeout", defaultCAWaitTimeout, "give up following the root CA rotation after this long (rerun with --id to attach again)")
	return cmd
}

// incidentJSON is `incident --format json`.
type incidentJSON struct {
	ID     string          `json:"id"`
	DryRun bool            `json:"dry_run,omitempty"`
	Steps  []incident.Step `json:"steps"`
	Error  string          `json:"error,omitempty"`
}

func (a *app) runIncident(ctx context.Context, fl incidentFlags) error {
	format, err := a.outputFormat("table", "json")
	if err != nil {
		return err
	}
	if strings.TrimSpace(fl.reason) == "" {
		return usageErr("--reason is required: it is recorded with every step of the incident")
	}
	scope, err := incident.ParseScope(fl.scope)
	if err != nil {
		return usageErr("%v", err)
	}
	inScope := func(s string) bool {
		for _, x := range scope {
			if x == s {
				return true
			}
		}
		return false
	}
	if len(fl.secrets) > 0 && !inScope(incident.ScopeSecrets) {
		return usageErr("--secret needs secrets in --scope (%s)", fl.scope)
	}
	if fl.caTimeout <= 0 {
		return usageErr("--ca-timeout %s must be positive", fl.caTimeout)
	}
	id := fl.id
	if id == "" {
		id = incident.NewID(time.Now())
	}
	if err := incident.CheckID(id); err != nil {
		return usageErr("--id: %v", err)
	}
	c, _, err := a.engine(ctx)
	if err != nil {
		return err
	}
	// The secrets are checked before anything changes: an unknown mapping or an unreachable Vault refuses
	// the whole response, not its fifth step.
	var sync func(ctx context.Context, name string, env operator.TaskEnv, dryRun bool) ([]secretsync.Result, error)
	if len(fl.secrets) > 0 {
		ss, ms, _, err := a.openSync(ctx, fl.secrets, false)
		if err != nil {
			return err
		}
		sync = func(ctx context.Context, name string, env operator.TaskEnv, dryRun bool) ([]secretsync.Result, error) {
			for _, m := range ms {
				if m.Name == name {
					env.DryRun = dryRun
					res, _ := ss.Run(ctx, env, []secrets.Mapping{m}, secretsync.Options{DryRun: dryRun, Force: true, Reason: env.Reason})
					return res, resultsErr(res)
				}
			}
			return nil, fmt.Errorf("no mapping %q", name)
		}
	}
	ledger := a.ledger(c)
	resp := &incident.Response{ID: id, Reason: fl.reason, Ledger: ledger, Actions: a.incidentActions(c, ledger, sync, fl.caTimeout)}
	steps := incident.Plan(scope, fl.secrets)
	if fl.dryRun {
		planned, err := resp.Preview(ctx, steps)
		if err != nil {
			return failed(err)
		}
		return a.writeTableOrJSON(format, incidentJSON{ID: id, DryRun: true, Steps: planned}, func(w io.Writer) error {
			fmt.Fprintf(w, "incident %s (dry run: nothing changed)\n", id)
			return incidentTable(w, planned)
		})
	}
	fmt.Fprintf(a.stderr, "incident %s: %d steps; if interrupted, resume with: swarmguard incident --id %s --reason %q\n", id, len(steps), id, fl.reason)
	resp.Progress = func(i, n int, s incident.Step) {
		if s.Status == incident.StatusPlanned {
			fmt.Fprintf(a.stderr, "[%d/%d] %s: started\n", i+1, n, s.Key())
			return
		}
		fmt.Fprintf(a.stderr, "[%d/%d] %s: %s: %s\n", i+1, n, s.Key(), s.Status, s.Detail)
	}
	env := operator.TaskEnv{Actor: actor(), Log: a.log, Now: time.Now, Out: a.stderr}
	var done []incident.Step
	err = a.hold(ctx, "incident "+id, env, func(ctx context.Context, env operator.TaskEnv) error {
		var err error
		done, err = resp.Run(ctx, steps, env)
		return err
	})
	if done == nil {
		done = steps
	}
	out := incidentJSON{ID: id, Steps: done}
	if err != nil {
		out.Error = err.Error()
	}
	werr := a.writeTableOrJSON(format, out, func(w io.Writer) error {
		fmt.Fprintf(w, "incident %s\n", id)
		return incidentTable(w, done)
	})
	if err != nil {
		return failed(err)
	}
	return werr
}

func incidentTable(w io.Writer, steps []incident.Step) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tDETAIL")
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key(), s.Status, s.Detail)
	}
	return tw.Flush()
}

// incidentActions are the steps of the response, each through its domain's own code (the same calls as
// rotate join-token, rotate unlock-key, rotate ca --wait, rotate secret and report). A step's detail goes
// into the ledger's labels and the webhooks' audit records: it names a token or key by its fingerprint
// only, never by Masked (whose last characters are the secret's own).
func (a *app) incidentActions(c *swarm.Client, ledger *swarm.Ledger,
	sync func(context.Context, string, operator.TaskEnv, bool) ([]secretsync.Result, error), caTimeout time.Duration) map[string]incident.Action {
	tk := a.tokens(c, ledger)
	al := a.autolock(c, ledger)
	token := incident.Action{
		Plan: func(ctx context.Context, s incident.Step) (incident.Outcome, error) {
			cl, err := c.Cluster(ctx)
			if err != nil {
				return incident.Outcome{}, err
			}
			kind := swarm.TokenWorker
			if s.Kind == incident.KindManagerToken {
				kind = swarm.TokenManager
			}
			return incident.Outcome{Detail: planDetail(tokens.PlanRotate(cl, []string{kind}, ""))}, nil
		},
		Do: func(ctx context.Context, s incident.Step, env operator.TaskEnv) (incident.Outcome, error) {
			kind := swarm.TokenWorker
			if s.Kind == incident.KindManagerToken {
				kind = swarm.TokenManager
			}
			rots, err := tk.Rotate(ctx, []string{kind}, env)
			if len(rots) == 0 {
				return incident.Outcome{}, err
			}
			o := incident.Outcome{Detail: fmt.Sprintf("rotated: now sha256:%s (was sha256:%s)", rots[0].Token.Short(), shortFP(rots[0].OldFingerprint))}
			return o, err
		},
	}
	autolockOn := func(ctx context.Context) (bool, error) {
		cl, err := c.Cluster(ctx)
		return cl.AutoLock, err
	}
	const autolockOff = "autolock is off: there is no unlock key to rotate"
	return map[string]incident.Action{
		incident.KindWorkerToken:  token,
		incident.KindManagerToken: token,
		incident.KindUnlockKey: {
			Plan: func(ctx context.Context, _ incident.Step) (incident.Outcome, error) {
				on, err := autolockOn(ctx)
				if err != nil || !on {
					return incident.Outcome{Detail: autolockOff, Skipped: true}, err
				}
				return incident.Outcome{Detail: "would rotate the unlock key and escrow it to vault"}, nil
			},
			Do: func(ctx context.Context, _ incident.Step, env operator.TaskEnv) (incident.Outcome, error) {
				on, err := autolockOn(ctx)
				if err != nil {
					return incident.Outcome{}, err
				}
				if !on {
					return incident.Outcome{Detail: autolockOff, Skipped: true}, nil
				}
				res, err := al.RotateKey(ctx, autolock.RotateKeyOptions{}, env)
				if err != nil {
					return incident.Outcome{}, err
				}
				d := "rotated: now sha256:" + res.Key.Short()
				if res.Escrow != nil {
					d += fmt.Sprintf(", escrowed to %s version %d (read back: %v)", res.Escrow.Path, res.Escrow.Version, res.Escrow.Verified)
				}
				return incident.Outcome{Detail: d}, nil
			},
		},
		incident.KindCA: incidentCA(c, ledger, a.tokens(c, ledger).Republisher(), caTimeout),
		incident.KindSecret: {
			Plan: func(ctx context.Context, s incident.Step) (incident.Outcome, error) {
				return incident.Outcome{Detail: "would resync " + s.Name + " from vault and roll its services"}, nil
			},
			Do: func(ctx context.Context, s incident.Step, env operator.TaskEnv) (incident.Outcome, error) {
				if sync == nil {
					return incident.Outcome{}, fmt.Errorf("no secret sync set up for %q", s.Name)
				}
				res, err := sync(ctx, s.Name, env, false)
				var parts []string
				for _, r := range res {
					p := r.Outcome
					if r.Created != "" {
						p += ", created " + r.Created
					}
					if len(r.Updated) > 0 {
						p += ", rolled " + strings.Join(r.Updated, " ")
					}
					parts = append(parts, p)
				}
				return incident.Outcome{Detail: strings.Join(parts, "; ")}, err
			},
		},
		incident.KindReport: {
			Plan: func(context.Context, incident.Step) (incident.Outcome, error) {
				return incident.Outcome{Detail: "would build the compliance report"}, nil
			},
			Do: func(ctx context.Context, _ incident.Step, env operator.TaskEnv) (incident.Outcome, error) {
				r, _, err := buildReport(ctx, a, c, env.Time())
				if err != nil {
					return incident.Outcome{}, err
				}
				return incident.Outcome{Detail: reportSummary(r) + " (swarmguard report shows each check)"}, nil
			},
		},
	}
}

// incidentCA is the incident's root CA step: rotate the root CA and follow the rotation to completion (as
// rotate ca --wait), then republish the join tokens (republish nil: publishing not configured).
func incidentCA(eng certs.Engine, ledger operator.LedgerStore, republish func(context.Context, operator.TaskEnv) error, caTimeout time.Duration) incident.Action {
	return incident.Action{
		Plan: func(ctx context.Context, s incident.Step) (incident.Outcome, error) {
			ca, err := eng.CA(ctx)
			if err != nil {
				return incident.Outcome{}, err
			}
			if n, ok := startedForceRotate(s); ok && ca.ForceRotate >= n {
				return incident.Outcome{Detail: fmt.Sprintf("would follow the root CA rotation this incident started (ForceRotate %d; now %d, in progress %v) to completion, start none, then republish the tokens",
					n, ca.ForceRotate, ca.RootRotationInProgress)}, nil
			}
			if ca.RootRotationInProgress {
				return incident.Outcome{Detail: "a root CA rotation is in progress: would follow it to completion"}, nil
			}
			return incident.Outcome{Detail: planDetail(certs.PlanStartCA(ca, swarm.RotateCAOptions{}, "")) + ", then republish the tokens"}, nil
		},
		Do: func(ctx context.Context, s incident.Step, env operator.TaskEnv) (incident.Outcome, error) {
			var start certs.CARotationStart
			resumed := false
			if n, ok := startedForceRotate(s); ok {
				// A rerun with --id after the step timed out: the swarm may have finished that rotation
				// since (a node came back); another one would make every node renew twice.
				var err error
				if start, resumed, err = certs.ResumeCARotation(ctx, eng, n, s.Started["old_root_serial"], env); err != nil {
					return incident.Outcome{}, err
				}
			}
			if !resumed {
				var err error
				if start, err = certs.StartCARotation(ctx, eng, ledger, swarm.RotateCAOptions{}, env); err != nil {
					return incident.Outcome{}, err
				}
			}
			if err := certs.FollowCARotation(ctx, eng, ledger, start, certs.FollowOptions{Timeout: caTimeout, Republish: republish, Progress: caFollowPrinter(env.Output())}, env); err != nil {
				return incident.Outcome{}, err
			}
			verb := "rotated"
			switch {
			case start.Resumed:
				verb = "followed the rotation this incident started"
			case start.Attached:
				verb = "followed the rotation in progress"
			}
			return incident.Outcome{Detail: fmt.Sprintf("%s (ForceRotate %d): every node on the new root", verb, start.ForceRotate)}, nil
		},
	}
}

// startedForceRotate is the ForceRotate of the root CA rotation an earlier attempt of the incident started.
func startedForceRotate(s incident.Step) (uint64, bool) {
	n, err := strconv.ParseUint(s.Started["force_rotate"], 10, 64)
	return n, err == nil && n > 0
}
