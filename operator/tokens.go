package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
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

// Ledger detail keys of the credential entries. They hold fingerprints (hex SHA-256), never values.
const (
	DetailFingerprint    = "fingerprint" // the credential in force after the entry
	DetailOldFingerprint = "old_fingerprint"
	DetailNewFingerprint = "new_fingerprint"
	// DetailSecretFingerprint is the fingerprint of a join token's secret part alone (its last '-' field).
	// A root CA rotation changes a token's CA-digest part but not its secret; comparing this one tells a
	// rotation of the secret from a new CA digest.
	DetailSecretFingerprint = "secret_fingerprint"
	DetailSwarmID           = "swarm_id"
	DetailError             = "error"
	DetailVaultPath         = "vault_path"
	DetailVaultVersion      = "vault_version"
	DetailAction            = "action"
)

// ledgerRecordTimeout bounds recording a rotation that already happened, after its pass's context ended.
const ledgerRecordTimeout = 30 * time.Second

// TokenKinds are the join-token kinds, in the order they are handled.
var TokenKinds = []string{swarm.TokenWorker, swarm.TokenManager}

// TokenLedgerKind is the ledger kind of a join-token kind.
func TokenLedgerKind(kind string) string {
	if kind == swarm.TokenManager {
		return swarm.KindJoinTokenManager
	}
	return swarm.KindJoinTokenWorker
}

// CredentialClock is what the ledger says of a credential's age.
type CredentialClock struct {
	// Tracked is true when the ledger has an entry that started the clock (a rotation or an adoption).
	Tracked bool
	// Adopted is true when the clock was started by adoption, not by a rotation of ours.
	Adopted bool
	// Since is when the clock started; zero when not tracked.
	Since time.Time
	// Age is now - Since; zero when not tracked.
	Age time.Duration
	// Fingerprint is the credential's fingerprint the entry recorded.
	Fingerprint string
	// SecretFingerprint is the fingerprint of a join token's secret part the entry recorded (empty for
	// other credentials and for entries written before it was recorded).
	SecretFingerprint string
}

// credentialClock reads the clock of a ledger kind: its newest successful rotation or adoption.
func credentialClock(entries []swarm.Entry, kind string, now time.Time) CredentialClock {
	e, ok := swarm.Latest(entries, kind, swarm.ResultOK, swarm.ResultAdopted)
	if !ok {
		return CredentialClock{}
	}
	fp := e.Details[DetailFingerprint]
	if fp == "" {
		fp = e.Details[DetailNewFingerprint]
	}
	return CredentialClock{Tracked: true, Adopted: e.Result == swarm.ResultAdopted, Since: e.At, Age: max(now.Sub(e.At), 0), Fingerprint: fp,
		SecretFingerprint: e.Details[DetailSecretFingerprint]}
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

// ChangedOutsideLedger reports whether the swarm's current token is not the one the ledger's clock
// recorded: it was rotated without a record (docker swarm join-token --rotate, or a holder stopped between
// rotating and recording). A root CA rotation, which changes only the CA-digest part, is not a change.
func (c CredentialClock) ChangedOutsideLedger(tok sensitive.Value) bool {
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
	Clock  CredentialClock
	MaxAge time.Duration
	// Adopt: never rotated by us and tokens.adopt is true: start its clock now (ledger result "adopted").
	Adopt bool
	// Due: rotate it now.
	Due bool
	// Why says why, for logs and dry runs.
	Why string
}

// DecideToken decides for one join token from the ledger, the policy and now. A max age of zero means
// never by schedule. A token never rotated by swarmguard starts its clock now when adopt is true, and is
// due at once when it is false.
func DecideToken(kind string, entries []swarm.Entry, maxAge time.Duration, adopt bool, now time.Time) TokenDecision {
	d := TokenDecision{Kind: kind, Clock: credentialClock(entries, TokenLedgerKind(kind), now), MaxAge: maxAge}
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
	Ledger LedgerStore
	Config config.TokensConfig
	// Publisher returns the Vault writer for tokens.publish.vault_path; called only when that is set.
	Publisher func(ctx context.Context) (TokenPublisher, error)
}

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

// Rotate rotates the join tokens of the given kinds now, records each in the ledger (actor, reason, old
// and new fingerprints) and publishes the new tokens when tokens.publish.vault_path is set. The
// returned rotations are valid even when the error is a *PublishError or a ledger failure: the swarm has
// the new tokens.
func (t *Tokens) Rotate(ctx context.Context, kinds []string, env TaskEnv) ([]TokenRotated, error) {
	worker, manager := false, false
	for _, k := range kinds {
		switch k {
		case swarm.TokenWorker:
			worker = true
		case swarm.TokenManager:
			manager = true
		default:
			return nil, fmt.Errorf("join token kind %q is not worker or manager", k)
		}
	}
	if err := env.CheckHolder(ctx); err != nil {
		return nil, err
	}
	rots, err := t.Engine.RotateJoinTokens(ctx, worker, manager)
	at := env.Time()
	if err != nil {
		var failed []swarm.Entry
		for _, k := range kinds {
			failed = append(failed, swarm.Entry{Kind: TokenLedgerKind(k), At: at, Actor: env.Actor, Reason: env.Reason,
				Result: swarm.ResultFailed, Details: map[string]string{DetailError: shortErr(err)}})
		}
		if _, lerr := t.Ledger.Append(ctx, failed...); lerr != nil {
			env.Logger().Warn("recording the failed rotation in the ledger failed", "err", lerr)
		}
		return nil, fmt.Errorf("rotating join tokens: %w", err)
	}
	out := make([]TokenRotated, 0, len(rots))
	entries := make([]swarm.Entry, 0, len(rots))
	for _, r := range rots {
		out = append(out, TokenRotated{Kind: r.Kind, At: at, Token: r.New, OldFingerprint: r.Old.Fingerprint()})
		entries = append(entries, swarm.Entry{Kind: TokenLedgerKind(r.Kind), At: at, Actor: env.Actor, Reason: env.Reason, Result: swarm.ResultOK,
			Details: map[string]string{
				DetailOldFingerprint: r.Old.Fingerprint(), DetailNewFingerprint: r.New.Fingerprint(),
				DetailFingerprint: r.New.Fingerprint(), DetailSecretFingerprint: tokenSecretFingerprint(r.New), DetailSwarmID: r.SwarmID,
			}})
		env.Logger().Info("rotated join token", "kind", r.Kind, "old_fingerprint", r.Old.Short(), "new_fingerprint", r.New.Short(), "actor", env.Actor, "reason", env.Reason)
	}
	// The rotation happened: record it even when this pass's context ended meanwhile (the lease lapsed
	// during a stall). A record of what was done is always right; a lost one would make the next holder
	// rotate again for the same due time.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ledgerRecordTimeout)
	defer cancel()
	if _, err := t.Ledger.Append(lctx, entries...); err != nil {
		return out, fmt.Errorf("the join tokens were rotated, but recording it in the ledger failed: %w (the next pass records the new tokens instead of rotating again)", err)
	}
	if t.Config.Publish.VaultPath != "" {
		if _, err := t.Publish(ctx, env); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Publish writes the swarm's current join tokens to tokens.publish.vault_path (check-and-set, read back,
// never over another swarm's record). Nothing is written when the path already holds them.
func (t *Tokens) Publish(ctx context.Context, env TaskEnv) (secrets.Receipt, error) {
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

func publishTokens(ctx context.Context, pub TokenPublisher, path string, cl swarm.Cluster, env TaskEnv) (secrets.Receipt, error) {
	rc, err := pub.PublishTokens(ctx, path, cl.ID, cl.WorkerToken, cl.ManagerToken, env.Time())
	if err != nil {
		return rc, &PublishError{Path: path, Err: sensitive.RedactErr(err, cl.WorkerToken, cl.ManagerToken)}
	}
	if !rc.Unchanged {
		env.Logger().Info("published join tokens to vault", "vault_path", path, "vault_version", rc.Version,
			"worker_fingerprint", cl.WorkerToken.Short(), "manager_fingerprint", cl.ManagerToken.Short())
	}
	return rc, nil
}

// ClusterReader reads the swarm object. *swarm.Client satisfies it.
type ClusterReader interface {
	Cluster(ctx context.Context) (swarm.Cluster, error)
}

// RepublishTokens writes the swarm's current join tokens to path again. Call it when a root CA rotation
// has completed: the CA-digest part of every join token changes then, so the published ones no longer
// work. It does nothing when path is empty (publishing is not configured).
func RepublishTokens(ctx context.Context, eng ClusterReader, pub TokenPublisher, path string, env TaskEnv) (secrets.Receipt, error) {
	if path == "" || pub == nil {
		return secrets.Receipt{}, nil
	}
	cl, err := eng.Cluster(ctx)
	if err != nil {
		return secrets.Receipt{}, fmt.Errorf("reading the join tokens to republish: %w", err)
	}
	return publishTokens(ctx, pub, path, cl, env)
}

// Task is the controller's join-token pass (operator.Task{Name: "tokens"}).
func (t *Tokens) Task() Task {
	return Task{Name: "tokens", Schedule: t.Config.Schedule, Run: t.Run}
}

// Run is one pass: adopt tokens never seen, rotate those past their max age, and republish when the
// published tokens are not the swarm's current ones (after a failed publish, or a root CA rotation).
func (t *Tokens) Run(ctx context.Context, env TaskEnv) error {
	log := env.Logger().With("component", "tokens")
	entries, err := t.Ledger.Entries(ctx)
	if err != nil {
		return fmt.Errorf("reading the ledger: %w", err)
	}
	cl, err := t.Engine.Cluster(ctx)
	if err != nil {
		return fmt.Errorf("reading the swarm: %w", err)
	}
	at := env.Time()
	var adopt []swarm.Entry
	var due []string
	var whys []string
	for _, kind := range TokenKinds {
		maxAge := t.Config.Worker.MaxAge.D()
		tok := cl.WorkerToken
		if kind == swarm.TokenManager {
			maxAge, tok = t.Config.Manager.MaxAge.D(), cl.ManagerToken
		}
		d := DecideToken(kind, entries, maxAge, t.Config.Adopt, at)
		reason := "first seen: clock started (tokens.adopt)"
		if d.Clock.ChangedOutsideLedger(tok) {
			// Rotating now would rotate twice for one due time: record the token the swarm has and restart
			// its clock instead.
			d = TokenDecision{Kind: kind, Clock: d.Clock, MaxAge: maxAge, Adopt: true,
				Why: fmt.Sprintf("%s token changed outside the ledger: its clock starts now", kind)}
			reason = "changed outside the ledger (a manual rotation, or a holder stopped between rotating and recording): clock started"
		}
		switch {
		case d.Adopt:
			adopt = append(adopt, swarm.Entry{Kind: TokenLedgerKind(kind), At: at, Actor: env.Actor, Reason: reason,
				Result: swarm.ResultAdopted, Details: map[string]string{DetailFingerprint: tok.Fingerprint(), DetailSecretFingerprint: tokenSecretFingerprint(tok), DetailSwarmID: cl.ID}})
		case d.Due:
			due = append(due, kind)
			whys = append(whys, d.Why)
		}
		log.Debug("join token decision", "kind", kind, "due", d.Due, "adopt", d.Adopt, "why", d.Why)
		if env.DryRun && env.Out != nil {
			verb := "keep"
			if d.Due {
				verb = "would rotate"
			} else if d.Adopt {
				verb = "would adopt"
			}
			fmt.Fprintf(env.Out, "tokens: %s %s token (%s): %s\n", verb, kind, tok.Masked(), d.Why)
		}
	}
	if env.DryRun {
		return nil
	}
	if len(adopt) > 0 {
		if err := env.CheckHolder(ctx); err != nil {
			return err
		}
		if _, err := t.Ledger.Append(ctx, adopt...); err != nil {
			return fmt.Errorf("recording adopted join tokens: %w", err)
		}
		for _, e := range adopt {
			log.Info("adopted join token: its clock starts now", "kind", e.Kind, "fingerprint", sensitive.Short(e.Details[DetailFingerprint]))
		}
	}
	if len(due) > 0 {
		renv := env
		if renv.Reason == "" {
			renv.Reason = "scheduled: " + strings.Join(whys, "; ")
		}
		_, err := t.Rotate(ctx, due, renv)
		return err
	}
	return t.republishIfStale(ctx, cl, env)
}

// republishIfStale compares the published tokens with the swarm's and republishes on a difference. A
// failed read decides nothing.
func (t *Tokens) republishIfStale(ctx context.Context, cl swarm.Cluster, env TaskEnv) error {
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
	out := make([]TokenFinding, 0, len(TokenKinds))
	for _, kind := range TokenKinds {
		maxAge, tok := cfg.Worker.MaxAge.D(), cl.WorkerToken
		if kind == swarm.TokenManager {
			maxAge, tok = cfg.Manager.MaxAge.D(), cl.ManagerToken
		}
		d := DecideToken(kind, entries, maxAge, cfg.Adopt, now)
		out = append(out, TokenFinding{
			Kind: kind, Fingerprint: tok.Short(), Tracked: d.Clock.Tracked, Adopted: d.Clock.Adopted, Since: d.Clock.Since,
			Age: config.Duration(d.Clock.Age), MaxAge: config.Duration(maxAge), Due: d.Due,
			ChangedOutside: d.Clock.ChangedOutsideLedger(tok),
		})
	}
	return out
}
