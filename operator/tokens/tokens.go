package tokens

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/crashpoint"
	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// TokenEngine is what the join-token pass needs of the engine. *swarm.Client satisfies it.
type TokenEngine interface {
	Cluster(ctx context.Context) (swarm.Cluster, error)
	RotateJoinTokens(ctx context.Context, worker, manager bool) ([]swarm.TokenRotation, error)
}

// TokenPublisher writes the join tokens to Vault KV (tokens.publish.vault_path). *secrets.Escrow satisfies it.
type TokenPublisher interface {
	PublishTokens(ctx context.Context, path, swarmID string, worker, manager sensitive.Value, at time.Time) (secrets.Receipt, error)
	LoadTokens(ctx context.Context, path string) (secrets.TokenRecord, error)
}

var (
	_ TokenEngine    = (*swarm.Client)(nil)
	_ TokenPublisher = (*secrets.Escrow)(nil)
)

// TokenKinds are the join-token kinds, in the order they are handled.
var TokenKinds = []string{swarm.TokenWorker, swarm.TokenManager}

// TokenLedgerKind is the ledger kind of a join-token kind.
func TokenLedgerKind(kind string) string {
	if kind == swarm.TokenManager {
		return swarm.KindJoinTokenManager
	}
	return swarm.KindJoinTokenWorker
}

// tokenSecretFingerprint is the hex SHA-256 of a join token's secret part (SWMTKN-1-<CA digest>-<secret>).
func tokenSecretFingerprint(tok sensitive.Value) string {
	v := tok.Reveal()
	i := strings.LastIndexByte(v, '-')
	if v == "" || i < 0 {
		return ""
	}
	return sensitive.New(v[i+1:]).Fingerprint()
}

// changedOutsideLedger reports whether the swarm's current token is not the one the ledger's clock
// recorded: it was rotated without a record (docker swarm join-token --rotate, or a holder stopped between
// rotating and recording). A root CA rotation, which changes only the CA-digest part, is not a change.
func changedOutsideLedger(c operator.CredentialClock, tok sensitive.Value) bool {
	if !c.Tracked || tok.IsZero() {
		return false
	}
	if c.SecretFingerprint != "" {
		return c.SecretFingerprint != tokenSecretFingerprint(tok)
	}
	return c.Fingerprint != "" && c.Fingerprint != tok.Fingerprint()
}

// TokenDecision is what the policy says of one join token.
type TokenDecision struct {
	Kind   string // worker | manager
	Clock  operator.CredentialClock
	MaxAge time.Duration
	// Adopt: never rotated by us and tokens.adopt is true: start its clock now (ledger result "adopted").
	Adopt bool
	// Due: rotate it now.
	Due bool
	// Why says why, for logs and dry runs.
	Why string
	// Token is the swarm's current token of this kind (zero when the decision was made without it).
	Token sensitive.Value
	// ChangedOutside: the swarm's token is not the one the ledger's clock recorded (rotated outside
	// swarmguard, or by a holder stopped between rotating and recording). Rotating now would rotate twice
	// for one due time, so the decision is to adopt it and restart its clock.
	ChangedOutside bool
	// AdoptReason is the ledger reason of an adoption.
	AdoptReason string
}

// Observation is what the join-token domain reads: the swarm (its ID and its current tokens) and the
// ledger.
type Observation struct {
	Cluster swarm.Cluster
	Entries []swarm.Entry
}

// Decide is the join-token policy: one decision per kind (worker, then manager) from what was observed,
// the policy and now. The controller's pass acts on it and the report's tokens.age is derived from it, so
// the two cannot disagree.
func Decide(o Observation, cfg config.TokensConfig, now time.Time) []TokenDecision {
	out := make([]TokenDecision, 0, len(TokenKinds))
	for _, kind := range TokenKinds {
		maxAge, tok := cfg.Worker.MaxAge.D(), o.Cluster.WorkerToken
		if kind == swarm.TokenManager {
			maxAge, tok = cfg.Manager.MaxAge.D(), o.Cluster.ManagerToken
		}
		d := DecideToken(kind, o.Entries, maxAge, cfg.Adopt, now)
		d.Token = tok
		d.AdoptReason = "first seen: clock started (tokens.adopt)"
		if changedOutsideLedger(d.Clock, tok) {
			d.ChangedOutside, d.Adopt, d.Due = true, true, false
			d.Why = fmt.Sprintf("%s token changed outside the ledger: its clock starts now", kind)
			d.AdoptReason = "changed outside the ledger (a manual rotation, or a holder stopped between rotating and recording): clock started"
		}
		if cfg.RequireWindows && !d.Due {
			if due, why := requireWindowsDue(d, Windows(o.Entries, false)); due {
				d.Due, d.Adopt, d.Why = true, false, why
			}
		}
		out = append(out, d)
	}
	return out
}

// DecideToken decides for one join token from the ledger, the policy and now. A max age of zero means
// never by schedule. A token never rotated by swarmguard starts its clock now when adopt is true, and is
// due at once when it is false.
func DecideToken(kind string, entries []swarm.Entry, maxAge time.Duration, adopt bool, now time.Time) TokenDecision {
	d := TokenDecision{Kind: kind, Clock: operator.ReadClock(entries, TokenLedgerKind(kind), now), MaxAge: maxAge}
	switch {
	case !d.Clock.Tracked && adopt:
		d.Adopt = true
		d.Why = fmt.Sprintf("%s token never rotated by swarmguard: its clock starts now (tokens.adopt)", kind)
	case maxAge <= 0:
		d.Why = fmt.Sprintf("%s token: no max_age, not rotated by schedule", kind)
	case !d.Clock.Tracked:
		d.Due = true
		d.Why = fmt.Sprintf("%s token never rotated by swarmguard and tokens.adopt is false", kind)
	case d.Clock.Age >= maxAge:
		d.Due = true
		d.Why = fmt.Sprintf("%s token older than %s (%s since %s)", kind, config.Duration(maxAge), config.Duration(d.Clock.Age.Round(time.Second)), d.Clock.Since.UTC().Format(time.RFC3339))
	default:
		d.Why = fmt.Sprintf("%s token not due: %s of %s left", kind, config.Duration((maxAge - d.Clock.Age).Round(time.Second)), config.Duration(maxAge))
	}
	return d
}

// Tokens is the join-token domain: scheduled and manual rotation, the ledger, publishing to Vault.
type Tokens struct {
	Engine TokenEngine
	Ledger operator.LedgerStore
	Config config.TokensConfig
	// Publisher returns the Vault writer for tokens.publish.vault_path; called only when that is set.
	Publisher func(ctx context.Context) (TokenPublisher, error)
	// Ages, when not nil, gets each token's age and max age from the decision of each pass.
	Ages *operator.CredentialAges
	// Nodes counts the joins of a join window with a node limit; read only when such a window is open.
	Nodes NodeLister
	// Gauges, when not nil, gets the domain's compliance gauges (its report section's check statuses) from
	// each tokens pass's own observation.
	Gauges func([]report.Gauge)

	// mu serializes this domain's passes (the tokens loop and the join-windows loop run concurrently), so
	// that two of them never rotate a token for one reason.
	mu sync.Mutex
}

// NodeLister lists the swarm's nodes. *swarm.Client satisfies it.
type NodeLister interface {
	Nodes(ctx context.Context) ([]swarm.Node, error)
}

var _ NodeLister = (*swarm.Client)(nil)

// TokenRotated is one rotated token. Token is the new token: print it masked unless asked to show it.
type TokenRotated struct {
	Kind           string
	At             time.Time
	Token          sensitive.Value
	OldFingerprint string
}

// PublishError means the tokens were rotated (and recorded) but writing them to Vault failed.
type PublishError struct {
	Path string
	Err  error
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("the join tokens were rotated and recorded, but publishing them to vault at %q failed: %v; "+
		"the controller republishes on its next pass, or rerun the rotation once vault answers", e.Path, e.Err)
}

func (e *PublishError) Unwrap() error { return e.Err }

// Rotate rotates the join tokens of the given kinds now (the plan PlanRotate shows, applied), records
// each in the ledger (actor, reason, old and new fingerprints) and publishes the new tokens when
// tokens.publish.vault_path is set. The returned rotations are valid even when the error is a
// *PublishError or a ledger failure: the swarm has the new tokens.
func (t *Tokens) Rotate(ctx context.Context, kinds []string, env operator.TaskEnv) ([]TokenRotated, error) {
	for _, k := range kinds {
		if k != swarm.TokenWorker && k != swarm.TokenManager {
			return nil, fmt.Errorf("join token kind %q is not worker or manager", k)
		}
	}
	cl, err := t.Engine.Cluster(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the swarm: %w", err)
	}
	return t.Apply(ctx, planRotate(cl, kinds, env.Reason), env)
}

// rotate rotates the join tokens of the given kinds and returns the ledger entries to record (a failed
// attempt too), without writing them: the caller records once.
func (t *Tokens) rotate(ctx context.Context, kinds []string, env operator.TaskEnv) ([]TokenRotated, []swarm.Entry, error) {
	worker, manager := false, false
	for _, k := range kinds {
		switch k {
		case swarm.TokenWorker:
			worker = true
		case swarm.TokenManager:
			manager = true
		default:
			return nil, nil, fmt.Errorf("join token kind %q is not worker or manager", k)
		}
	}
	if err := env.CheckHolder(ctx); err != nil {
		return nil, nil, err
	}
	rots, err := t.Engine.RotateJoinTokens(ctx, worker, manager)
	at := env.Time()
	if err != nil {
		var failed []swarm.Entry
		for _, k := range kinds {
			failed = append(failed, swarm.Entry{Kind: TokenLedgerKind(k), At: at, Actor: env.Actor, Reason: env.Reason,
				Result: swarm.ResultFailed, Details: map[string]string{operator.DetailError: operator.ShortErr(err)}})
		}
		return nil, failed, fmt.Errorf("rotating join tokens: %w", err)
	}
	crashpoint.At("tokens.after-rotate") // rotated, neither recorded nor published: the next pass adopts it
	out := make([]TokenRotated, 0, len(rots))
	entries := make([]swarm.Entry, 0, len(rots))
	for _, r := range rots {
		out = append(out, TokenRotated{Kind: r.Kind, At: at, Token: r.New, OldFingerprint: r.Old.Fingerprint()})
		entries = append(entries, swarm.Entry{Kind: TokenLedgerKind(r.Kind), At: at, Actor: env.Actor, Reason: env.Reason, Result: swarm.ResultOK,
			Details: map[string]string{
				operator.DetailOldFingerprint: r.Old.Fingerprint(), operator.DetailNewFingerprint: r.New.Fingerprint(),
				operator.DetailFingerprint: r.New.Fingerprint(), operator.DetailSecretFingerprint: tokenSecretFingerprint(r.New), operator.DetailSwarmID: r.SwarmID,
			}})
		env.Logger().Info("rotated join token", "kind", r.Kind, "old_fingerprint", r.Old.Short(), "new_fingerprint", r.New.Short(), "actor", env.Actor, "reason", env.Reason)
	}
	return out, entries, nil
}

// publishAfterRotation publishes the new tokens when tokens.publish.vault_path is set.
func (t *Tokens) publishAfterRotation(ctx context.Context, env operator.TaskEnv) error {
	if t.Config.Publish.VaultPath == "" {
		return nil
	}
	_, err := t.Publish(ctx, env)
	return err
}

// Publish writes the swarm's current join tokens to tokens.publish.vault_path (check-and-set, read back,
// never over another swarm's record). Nothing is written when the path already holds them.
func (t *Tokens) Publish(ctx context.Context, env operator.TaskEnv) (secrets.Receipt, error) {
	path := t.Config.Publish.VaultPath
	if path == "" || t.Publisher == nil {
		return secrets.Receipt{}, nil
	}
	cl, err := t.Engine.Cluster(ctx)
	if err != nil {
		return secrets.Receipt{}, fmt.Errorf("reading the join tokens to publish: %w", err)
	}
	pub, err := t.Publisher(ctx)
	if err != nil {
		return secrets.Receipt{}, &PublishError{Path: path, Err: err}
	}
	return publishTokens(ctx, pub, path, cl, env)
}

func publishTokens(ctx context.Context, pub TokenPublisher, path string, cl swarm.Cluster, env operator.TaskEnv) (secrets.Receipt, error) {
	rc, err := pub.PublishTokens(ctx, path, cl.ID, cl.WorkerToken, cl.ManagerToken, env.Time())
	if err != nil {
		return rc, &PublishError{Path: path, Err: sensitive.RedactErr(err, cl.WorkerToken, cl.ManagerToken)}
	}
	crashpoint.At("tokens.after-publish") // published, not recorded
	if !rc.Unchanged {
		env.Logger().Info("published join tokens to vault", "vault_path", path, "vault_version", rc.Version,
			"worker_fingerprint", cl.WorkerToken.Short(), "manager_fingerprint", cl.ManagerToken.Short())
		// Its own audit record, with the action's actor (no ledger entry: the published copy is not state).
		audit.Action(ctx, swarm.Entry{Kind: AuditKindPublish, At: env.Time().UTC(), Actor: env.Actor, Reason: env.Reason,
			Result: swarm.ResultOK, Details: map[string]string{"vault_path": path, "vault_version": strconv.Itoa(rc.Version),
				"worker_fingerprint": cl.WorkerToken.Fingerprint(), "manager_fingerprint": cl.ManagerToken.Fingerprint()}}, 0)
	}
	return rc, nil
}

// AuditKindPublish is the kind of the audit record of a write of the join tokens to
// tokens.publish.vault_path. It has no ledger entry: what was published is read back from Vault.
const AuditKindPublish = "join-tokens-publish"

// ClusterReader reads the swarm object. *swarm.Client satisfies it.
type ClusterReader interface {
	Cluster(ctx context.Context) (swarm.Cluster, error)
}

// RepublishTokens writes the swarm's current join tokens to path again. Call it when a root CA rotation
// has completed: the CA-digest part of every join token changes then, so the published ones no longer
// work. It does nothing when path is empty (publishing is not configured).
func RepublishTokens(ctx context.Context, eng ClusterReader, pub TokenPublisher, path string, env operator.TaskEnv) (secrets.Receipt, error) {
	if path == "" || pub == nil {
		return secrets.Receipt{}, nil
	}
	cl, err := eng.Cluster(ctx)
	if err != nil {
		return secrets.Receipt{}, fmt.Errorf("reading the join tokens to republish: %w", err)
	}
	return publishTokens(ctx, pub, path, cl, env)
}

// Republisher is the republish step of the root CA follow-through (the controller's scheduled rotation,
// `rotate ca --wait`, the incident's CA step): the join tokens written again to tokens.publish.vault_path
// under the action's env, its actor and its guard: refused when the lease is no longer held. nil when
// publishing is not configured.
func (t *Tokens) Republisher() func(ctx context.Context, env operator.TaskEnv) error {
	path := t.Config.Publish.VaultPath
	if path == "" || t.Publisher == nil {
		return nil
	}
	return func(ctx context.Context, env operator.TaskEnv) error {
		// A write to Vault: only as the holder, or tokens read before the holder rotated and published newer
		// ones would overwrite them.
		if err := env.CheckHolder(ctx); err != nil {
			return fmt.Errorf("republishing the join tokens to %q: %w", path, err)
		}
		pub, err := t.Publisher(ctx)
		if err != nil {
			return fmt.Errorf("republishing the join tokens to %q: %w", path, err)
		}
		_, err = RepublishTokens(ctx, t.Engine, pub, path, env)
		return err
	}
}

// Task is the controller's join-token pass (operator.Task{Name: "tokens"}).
func (t *Tokens) Task() operator.Task {
	return operator.Task{Name: "tokens", Schedule: t.Config.Schedule, Run: t.Run}
}

// Run is one pass: Decide, then Apply the plan (a dry run prints it instead): adopt tokens never seen,
// rotate those past their max age, close the join windows that are due, and republish when the published
// tokens are not the swarm's current ones (after a failed publish, or a root CA rotation).
func (t *Tokens) Run(ctx context.Context, env operator.TaskEnv) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	log := env.Logger().With("component", "tokens")
	pp, err := t.Decide(ctx, env.Time())
	if err != nil {
		return err
	}
	if t.Gauges != nil {
		t.Gauges(SectionGauges(t.Config, pp.cluster, pp.entries, pp.at))
	}
	for _, d := range pp.decisions {
		t.Ages.Set(TokenLedgerKind(d.Kind), tokenAge(d))
		log.Debug("join token decision", "kind", d.Kind, "due", d.Due, "adopt", d.Adopt, "why", d.Why)
	}
	if env.DryRun {
		operator.PrintPlan(env, pp.Plan())
		return nil
	}
	_, err = t.Apply(ctx, pp, env)
	return err
}

// Apply acts on a join-token plan, nothing else: its adoptions, its rotations (one engine call for the
// kinds it rotates) and its windows' closes, re-checking the lease before the first change, and records
// one ledger entry per action, in the plan's order, in one write. The new tokens are then published (when
// tokens.publish.vault_path is set; no ledger entry). It prints nothing and returns the rotations.
func (t *Tokens) Apply(ctx context.Context, pp PassPlan, env operator.TaskEnv) ([]TokenRotated, error) {
	log := env.Logger().With("component", "tokens")
	cl, at := pp.cluster, env.Time()
	var record []swarm.Entry
	var rotKinds, whys []string
	var closing []WindowDecision
	for _, s := range pp.steps {
		switch {
		case s.adopt != nil:
			d := *s.adopt
			record = append(record, swarm.Entry{Kind: TokenLedgerKind(d.Kind), At: at, Actor: env.Actor, Reason: d.AdoptReason,
				Result: swarm.ResultAdopted, Details: map[string]string{operator.DetailFingerprint: d.Token.Fingerprint(),
					operator.DetailSecretFingerprint: tokenSecretFingerprint(d.Token), operator.DetailSwarmID: cl.ID}})
		case s.rotate != "":
			rotKinds = append(rotKinds, s.rotate)
			if s.dueWhy != "" {
				whys = append(whys, s.dueWhy)
			}
		case s.close != nil:
			closing = append(closing, *s.close)
		}
	}
	if len(pp.steps) > 0 {
		if err := env.CheckHolder(ctx); err != nil {
			return nil, err
		}
	}
	if len(closing) > 0 {
		// A closing window's token is rotated only by the plan's rotation of its kind.
		for i := range closing {
			closing[i].Rotate = closing[i].Rotate && contains(rotKinds, closing[i].Window.Kind)
		}
		why := ""
		if len(whys) > 0 && env.Reason == "" {
			why = "scheduled: " + strings.Join(whys, "; ")
		}
		rots, err := t.closeWindows(ctx, cl, closing, record, why, env, rotKinds...)
		if err != nil || len(rots) > 0 || !pp.republish {
			return rots, err // a rotation publishes its tokens
		}
		// Closed without a rotation (its token was rotated since it opened: by hand, or by a holder stopped
		// before recording it): the published tokens may be the old ones.
		return rots, t.republishIfStale(ctx, cl, env)
	}
	var rots []TokenRotated
	var rotErr error
	if len(rotKinds) > 0 {
		renv := env
		if renv.Reason == "" {
			renv.Reason = "scheduled: " + strings.Join(whys, "; ")
		}
		var rotated []swarm.Entry
		rots, rotated, rotErr = t.rotate(ctx, rotKinds, renv)
		record = append(record, rotated...)
	}
	// One write for the whole plan: the adoptions and the rotation (or its failure) together.
	if len(record) > 0 {
		if err := operator.Record(ctx, t.Ledger, record...); err != nil {
			if rotErr != nil {
				log.Warn("recording the failed rotation in the ledger failed", "err", err)
				return rots, rotErr
			}
			if len(rotKinds) > 0 {
				return rots, fmt.Errorf("the join tokens were rotated, but recording it in the ledger failed: %w (the next pass records the new tokens instead of rotating again)", err)
			}
			return rots, fmt.Errorf("recording adopted join tokens: %w", err)
		}
		for _, e := range record {
			if e.Result == swarm.ResultAdopted {
				log.Info("adopted join token: its clock starts now", "kind", e.Kind, "fingerprint", sensitive.Short(e.Details[operator.DetailFingerprint]))
			}
		}
	}
	if rotErr != nil {
		return rots, rotErr
	}
	if len(rotKinds) > 0 {
		return rots, t.publishAfterRotation(ctx, env)
	}
	if pp.republish {
		return rots, t.republishIfStale(ctx, cl, env)
	}
	return rots, nil
}

// decideWindows reads the open join windows and decides for each; the nodes are read only when a window
// has a node limit, and a failed read decides nothing.
func (t *Tokens) decideWindows(ctx context.Context, entries []swarm.Entry, cl swarm.Cluster, now time.Time) ([]WindowDecision, error) {
	ws := Windows(entries, false)
	if len(ws) == 0 {
		return nil, nil
	}
	for _, w := range ws {
		if w.Nodes > 0 {
			if t.Nodes == nil {
				return nil, fmt.Errorf("join window %s has a node limit, but this pass cannot list nodes", w.ID)
			}
			nodes, err := t.Nodes.Nodes(ctx)
			if err != nil {
				return nil, fmt.Errorf("counting the joins of join window %s: %w", w.ID, err)
			}
			CountJoined(ws, nodes)
			break
		}
	}
	return DecideWindows(ws, cl, now), nil
}

// tokenAge is the clock a decision saw: an adopted or changed-outside token's clock starts at this pass
// (age 0), one never tracked and not adopted has no known age.
func tokenAge(d TokenDecision) operator.CredentialAge {
	switch {
	case d.Adopt:
		return operator.CredentialAge{Known: true, MaxAge: d.MaxAge}
	case !d.Clock.Tracked:
		return operator.CredentialAge{MaxAge: d.MaxAge}
	}
	return operator.CredentialAge{Known: true, Age: d.Clock.Age, MaxAge: d.MaxAge}
}

// republishIfStale compares the published tokens with the swarm's and republishes on a difference. A
// failed read decides nothing.
func (t *Tokens) republishIfStale(ctx context.Context, cl swarm.Cluster, env operator.TaskEnv) error {
	path := t.Config.Publish.VaultPath
	if path == "" || t.Publisher == nil {
		return nil
	}
	pub, err := t.Publisher(ctx)
	if err != nil {
		return &PublishError{Path: path, Err: err}
	}
	rec, err := pub.LoadTokens(ctx, path)
	if err != nil && !errors.Is(err, secrets.ErrNotFound) {
		return fmt.Errorf("checking the published join tokens at %q: %w", path, sensitive.RedactErr(err, cl.WorkerToken, cl.ManagerToken))
	}
	if err == nil && rec.SwarmID == cl.ID && rec.Worker.Fingerprint() == cl.WorkerToken.Fingerprint() &&
		rec.Manager.Fingerprint() == cl.ManagerToken.Fingerprint() {
		return nil
	}
	if err := env.CheckHolder(ctx); err != nil {
		return err
	}
	_, err = publishTokens(ctx, pub, path, cl, env)
	return err
}

// TokenFinding is what the compliance report shows of one join token.
type TokenFinding struct {
	Kind        string          `json:"kind"`        // worker | manager
	Fingerprint string          `json:"fingerprint"` // short fingerprint of the current token
	Tracked     bool            `json:"tracked"`     // the ledger has started its clock
	Adopted     bool            `json:"adopted"`     // the clock was started by adoption, not by a rotation
	Since       time.Time       `json:"since,omitzero"`
	Age         config.Duration `json:"age"`
	MaxAge      config.Duration `json:"max_age"` // 0: not rotated by schedule
	Due         bool            `json:"due"`     // past its max age (or never rotated and tokens.adopt is false)
	// ChangedOutside: the token differs from the one the ledger last recorded: it was rotated outside
	// swarmguard (docker swarm join-token --rotate) or by a root CA rotation. Its age is then at most Age.
	ChangedOutside bool `json:"changed_outside"`
}

// TokenFindings describes the join tokens for the compliance report, from the swarm, the ledger and now.
func TokenFindings(cfg config.TokensConfig, cl swarm.Cluster, entries []swarm.Entry, now time.Time) []TokenFinding {
	ds := Decide(Observation{Cluster: cl, Entries: entries}, cfg, now)
	out := make([]TokenFinding, 0, len(ds))
	for _, d := range ds {
		out = append(out, TokenFinding{
			Kind: d.Kind, Fingerprint: d.Token.Short(), Tracked: d.Clock.Tracked, Adopted: d.Clock.Adopted, Since: d.Clock.Since,
			Age: config.Duration(d.Clock.Age), MaxAge: config.Duration(d.MaxAge), Due: d.Due, ChangedOutside: d.ChangedOutside,
		})
	}
	return out
}
