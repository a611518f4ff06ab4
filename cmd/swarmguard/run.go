package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/secretsync"
	"github.com/swarmguard/swarmguard/swarm"
)

// Tunables of `swarmguard run`.
const (
	// engineRetryMin and engineRetryMax pace the wait for a usable manager at start-up (a locked manager
	// after a restart, a daemon still starting); /healthz answers meanwhile and /readyz says why not ready.
	engineRetryMin = time.Second
	engineRetryMax = 30 * time.Second
	// httpShutdownTimeout and auditCloseTimeout keep the whole shutdown within 10 s, with the runtime's
	// DefaultStopGrace (5 s), the second a cancelled pass has to return, and the lease release (2 s).
	httpShutdownTimeout = time.Second
	auditCloseTimeout   = time.Second
)

func newRunCmd(a *app) *cobra.Command {
	var once, dryRun bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the controller: one actor among the managers, every loop on its schedule, health and metrics",
		Long: `run is the controller, deployed as a global service on the managers (charts/swarmguard/stack.yml). Every
replica serves /healthz, /readyz and /metrics on listen (default :9323). One replica holds the lease and acts;
the others stand by and take over when it goes away. On SIGTERM the running passes get 5 s to finish their
step (a pass still running then, following a stalled root CA rotation for instance, is cancelled: the
rotation goes on in the swarm and the next holder attaches to it), the lease is released and run exits 0
within 10 s.

run --once does one pass of every loop under the same lease, then exits: 0 when every pass succeeded, 1 when
one failed. --dry-run prints what would be done and changes nothing (it does not take the lease).`,
		Example: `  swarmguard run --config /etc/swarmguard/config.yaml
  swarmguard run --once --dry-run
  swarmguard run --once --config ci.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dryRun && !once {
				return usageErr("--dry-run needs --once (the controller itself never runs dry)")
			}
			if ps := a.cfg.FileProblems(); len(ps) > 0 {
				return usageErr("the configuration names files that cannot be read here (fix these keys, then check with `swarmguard config check`):\n%s", ps.Sorted().Error())
			}
			if once {
				return a.runOnce(cmd.Context(), dryRun)
			}
			return a.runController(cmd.Context())
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "one pass of every loop, then exit (0 all passed, 1 one failed)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "with --once: print what would be done, change nothing")
	return cmd
}

var (
	metricsMu  sync.Mutex
	appMetrics = map[*app]*operator.Metrics{}
)

// metrics is this command's Prometheus registry (with the runtime's metrics). A domain registers its own
// collectors in its registerTask builder: a.metrics().Registerer().MustRegister(myGaugeVec).
func (a *app) metrics() *operator.Metrics {
	metricsMu.Lock()
	defer metricsMu.Unlock()
	m, ok := appMetrics[a]
	if !ok {
		m = operator.NewMetrics()
		appMetrics[a] = m
	}
	return m
}

// webhookTargets reads notify.webhooks, each with its signing key from its secret_file. A key file that is
// configured but cannot be read, or is empty, is an error naming the key: nothing is ever sent unsigned to a
// receiver that expects a signature. `run` and every CLI action under the lease call it before they act.
func (a *app) webhookTargets() ([]audit.WebhookTarget, error) {
	var targets []audit.WebhookTarget
	var errs []error
	for i, w := range a.cfg.Notify.Webhooks {
		t := audit.WebhookTarget{URL: w.URL, Events: w.Events, Timeout: w.Timeout.D(), Index: i}
		if w.SecretFile != "" {
			b, err := os.ReadFile(w.SecretFile)
			key := bytes.TrimRight(b, "\r\n")
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("notify.webhooks[%d].secret_file: cannot read %s: %w (fix the file or remove the key; swarmguard does not send records unsigned)", i, w.SecretFile, errors.Unwrap(err)))
				continue
			case len(bytes.TrimSpace(key)) == 0:
				errs = append(errs, fmt.Errorf("notify.webhooks[%d].secret_file: %s is empty (put the HMAC key in it: head -c 32 /dev/urandom | base64)", i, w.SecretFile))
				continue
			}
			t.Key = audit.NewSigningKey(key)
		}
		targets = append(targets, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, usageErr("%v", err)
	}
	return targets, nil
}

// auditor builds the audit trail: the log and the webhooks of targets (webhookTargets).
func (a *app) auditor(ctx context.Context, targets []audit.WebhookTarget) *audit.Auditor {
	return audit.New(ctx, a.log, targets)
}

func (a *app) runController(ctx context.Context) error {
	log := a.log.With("component", "run")
	for _, p := range a.cfg.Warnings(environment()) {
		log.Warn("configuration sends credentials in clear", "key", p.Key, "problem", p.Msg)
	}
	m := a.metrics()
	var shutdowns []*http.Server
	targets, err := a.webhookTargets()
	if err != nil {
		return err
	}
	aud := a.auditor(context.WithoutCancel(ctx), targets)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditCloseTimeout)
		defer cancel()
		aud.Close(cctx)
	}()

	// Serve health first: the stack's healthcheck passes while the engine is awaited. An empty listen
	// serves nothing (no health, readiness or metrics).
	var rt atomic.Pointer[operator.Runtime]
	var waiting atomic.Value
	waiting.Store("not connected yet")
	ready := func() operator.Readiness {
		if r := rt.Load(); r != nil {
			return r.Ready()
		}
		return operator.Readiness{Engine: waiting.Load().(string), Config: "ok", Lease: operator.LeaseStatus{Role: operator.RoleUnknown}}
	}
	var token operator.BearerToken
	if f := a.cfg.HTTP.StatusTokenFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return usageErr("http.status_token_file: %s cannot be read or is empty (put a bearer token in it, or remove the key)", f)
		}
		token = operator.NewBearerToken(b)
	}
	status := operator.NewStatusHandler(func() any {
		ls := operator.LeaseStatus{Role: operator.RoleUnknown}
		if r := rt.Load(); r != nil {
			ls = r.Lease().Status()
		}
		var states []secretsync.SecretState
		if ss := a.secretsSync.Load(); ss != nil {
			states = ss.Status()
		}
		return secretsync.NewSecretsStatus(ls, states)
	}, token)
	var served chan error // nil when nothing is served: never ready in the select below
	serve := func(key, addr string, h http.Handler, endpoints string) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return failed(fmt.Errorf("listening on %s: %w (set %s to a free address)", addr, err, key))
		}
		srv := operator.NewServer(h)
		if served == nil {
			served = make(chan error, 2)
		}
		go func() {
			if err := srv.Serve(operator.LimitListener(ln, operator.HTTPMaxConnections)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				served <- fmt.Errorf("serving %s: %w", addr, err)
			}
		}()
		shutdowns = append(shutdowns, srv)
		log.Info("serving http", "endpoints", endpoints, "listen", ln.Addr().String(), "status_token", !token.Empty())
		return nil
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpShutdownTimeout)
		defer cancel()
		for _, srv := range shutdowns {
			_ = srv.Shutdown(sctx)
		}
	}()
	if a.cfg.Listen == "" {
		log.Warn("listen is empty: no /healthz, /readyz or /metrics (the stack's healthcheck needs them)")
	} else {
		onMain := status
		if a.cfg.HTTP.StatusListen != "" {
			onMain = nil
		}
		if err := serve("listen", a.cfg.Listen, operator.NewHandler(m, ready, onMain), "health, readiness and metrics"); err != nil {
			return err
		}
	}
	if a.cfg.HTTP.StatusListen != "" {
		if err := serve("http.status_listen", a.cfg.HTTP.StatusListen, status, "status"); err != nil {
			return err
		}
	}

	c, self, err := a.awaitEngine(ctx, log, &waiting)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	bridgeErr, stopBridge, err := a.startExternalCA(ctx, c, aud, m, log)
	if err != nil {
		return err
	}
	defer stopBridge()
	ledger := a.ledger(c)
	tasks, err := a.buildTasks(taskDeps{Engine: c, Self: self, Ledger: ledger, Audit: aud})
	if err != nil {
		return err
	}
	r, err := operator.NewRuntime(operator.RuntimeOptions{
		Store: c, LeaseName: a.cfg.Lease.Name, TTL: a.cfg.Lease.TTL.D(), Node: self.NodeID,
		Tasks: tasks, Ledger: ledger, Metrics: m, Audit: aud, Log: a.log, Events: c,
		Engine: func(ctx context.Context) error { _, err := c.Check(ctx); return err },
		ConfigProblems: func() config.Problems {
			return append(a.cfg.Validate(), a.cfg.FileProblems()...)
		},
	})
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	rt.Store(r)
	names := make([]string, 0, len(tasks))
	for _, t := range tasks {
		names = append(names, t.Name)
	}
	log.Info("controller starting", "node", self.NodeID, "actor", r.Actor(), "loops", names)
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(runCtx) }()
	select {
	case err := <-runErr:
		return err
	case err := <-served:
		// A listener failed under us: stop the runtime (releasing the lease) and report it.
		stopRun()
		<-runErr
		return failed(err)
	case err := <-bridgeErr:
		stopRun()
		<-runErr
		return failed(err)
	}
}

// awaitEngine waits until the engine is a usable manager, with backoff, until ctx ends (then it returns no
// error: a SIGTERM while waiting is a clean stop).
func (a *app) awaitEngine(ctx context.Context, log interface {
	Warn(string, ...any)
}, waiting *atomic.Value) (*swarm.Client, swarm.Self, error) {
	delay := engineRetryMin
	for {
		c, self, err := a.engine(ctx)
		if err == nil {
			return c, self, nil
		}
		var ee *exitError
		if errors.As(err, &ee) {
			return nil, self, err // the client cannot even be built: configuration
		}
		waiting.Store(operator.Cause(err)) // /readyz serves the class; the detail is logged below
		log.Warn("no usable swarm manager yet, will retry", "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, self, nil
		case <-t.C:
		}
		delay = min(2*delay, engineRetryMax)
	}
}

func (a *app) runOnce(ctx context.Context, dryRun bool) error {
	c, self, err := a.engine(ctx)
	if err != nil {
		return err
	}
	tasks, err := a.buildTasks(taskDeps{Engine: c, Self: self, Ledger: a.ledger(c)})
	if err != nil {
		return err
	}
	if len(tasks) == 0 {
		fmt.Fprintln(a.stdout, "no loops registered in this build; nothing to do")
		return nil
	}
	// Reason stays empty: each domain records why it acted ("scheduled: worker token older than 720h").
	env := operator.TaskEnv{DryRun: dryRun, Actor: actor(), Log: a.log, Now: time.Now, Out: a.stdout}
	var results []operator.PassResult
	if dryRun {
		env.Guard = operator.CheckOnly(func(context.Context) error { return errors.New("dry run: no change may be made") })
		results = operator.RunOnce(ctx, tasks, env, a.metrics())
	} else {
		err := a.hold(ctx, "run --once", env, func(ctx context.Context, env operator.TaskEnv) error {
			results = operator.RunOnce(ctx, tasks, env, a.metrics())
			return nil
		})
		if err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LOOP\tRESULT\tDURATION")
	var errs []error
	for _, r := range results {
		res := "ok"
		if r.Err != nil {
			res = "failed"
			errs = append(errs, fmt.Errorf("loop %s: %w", r.Loop, r.Err))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Loop, res, r.Duration.Round(time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(results) < len(tasks) {
		errs = append(errs, fmt.Errorf("interrupted after %d of %d loops", len(results), len(tasks)))
	}
	if err := errors.Join(errs...); err != nil {
		return failed(err)
	}
	return nil
}
