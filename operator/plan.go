package operator

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Plan is what one domain's pass would do to the swarm as it is now: observe (reads only), decide (pure),
// then this value. The dry run, `swarmguard plan` and the pass's apply all come from it: each action
// records exactly one ledger entry of its Kind when it is applied, in order.
type Plan struct {
	// Domain names the domain: tokens, autolock, certs, ca, networks, secrets, workloads.
	Domain string
	// Err is set when the domain could not be read or decided; the plan then holds no action.
	Err error
	// Actions are the changes the pass makes, in the order it makes them.
	Actions []Action
	// Notes say what was seen and left alone (mode audit, a skipped service), for people; never an action.
	Notes []string
}

// Action is one change a plan makes. It never holds a secret value.
type Action struct {
	// Kind is the ledger kind of the one entry the action records (swarm.KindJoinTokenWorker, ...).
	Kind string `json:"kind"`
	// Subject is what the action changes: "worker join token", "service web", "secret db_password".
	Subject string `json:"subject"`
	// Reason is why, as the policy says it.
	Reason string `json:"reason"`
	// Change is what is done: "rotate", "adopt: start its clock", "set no-new-privileges".
	Change string `json:"change"`
}

// Failed returns the plan of domain that could not be read: it says why and plans nothing.
func Failed(domain string, err error) Plan { return Plan{Domain: domain, Err: err} }

// Add appends an action.
func (p *Plan) Add(kind, subject, change, reason string) {
	p.Actions = append(p.Actions, Action{Kind: kind, Subject: subject, Change: change, Reason: reason})
}

// Note appends a note.
func (p *Plan) Note(format string, args ...any) {
	p.Notes = append(p.Notes, fmt.Sprintf(format, args...))
}

// Kinds counts the plan's actions by ledger kind.
func (p Plan) Kinds() map[string]int {
	out := map[string]int{}
	for _, a := range p.Actions {
		out[a.Kind]++
	}
	return out
}

// PlanDocument is `swarmguard plan --format json`.
type PlanDocument struct {
	GeneratedAt time.Time    `json:"generated_at"`
	SwarmID     string       `json:"swarm_id"`
	Domains     []PlanDomain `json:"domains"`
}

// PlanDomain is one domain's plan in a PlanDocument; Error is empty when it could be read.
type PlanDomain struct {
	Domain  string   `json:"domain"`
	Error   string   `json:"error"`
	Actions []Action `json:"actions"`
	Notes   []string `json:"notes,omitempty"`
}

// NewPlanDocument is the JSON document of plans.
func NewPlanDocument(now time.Time, swarmID string, plans []Plan) PlanDocument {
	d := PlanDocument{GeneratedAt: now.UTC(), SwarmID: swarmID, Domains: make([]PlanDomain, 0, len(plans))}
	for _, p := range plans {
		pd := PlanDomain{Domain: p.Domain, Actions: p.Actions, Notes: p.Notes}
		if pd.Actions == nil {
			pd.Actions = []Action{}
		}
		if p.Err != nil {
			pd.Error = p.Err.Error()
		}
		d.Domains = append(d.Domains, pd)
	}
	return d
}

// WritePlansJSON writes plans as a PlanDocument.
func WritePlansJSON(w io.Writer, now time.Time, swarmID string, plans []Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(NewPlanDocument(now, swarmID, plans))
}

// WritePlans writes plans as the dry-run text: one row per action (domain, ledger kind, subject, "would"
// and the change, reason), a row saying "nothing to do" for a domain without one, and the domain's error or notes below
// the table. Every --dry-run, `run --once --dry-run` and `swarmguard plan` print this text.
func WritePlans(w io.Writer, plans ...Plan) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tKIND\tSUBJECT\tCHANGE\tREASON")
	var below []string
	for _, p := range plans {
		switch {
		case p.Err != nil:
			fmt.Fprintf(tw, "%s\t-\t-\tcannot plan: see below\t-\n", p.Domain)
			below = append(below, fmt.Sprintf("%s: error: %s", p.Domain, oneLine(p.Err.Error())))
		case len(p.Actions) == 0:
			fmt.Fprintf(tw, "%s\t-\t-\tnothing to do\t-\n", p.Domain)
		}
		for _, a := range p.Actions {
			fmt.Fprintf(tw, "%s\t%s\t%s\twould %s\t%s\n", p.Domain, a.Kind, oneLine(a.Subject), oneLine(a.Change), oneLine(a.Reason))
		}
		for _, n := range p.Notes {
			below = append(below, fmt.Sprintf("%s: %s", p.Domain, oneLine(n)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, b := range below {
		if _, err := fmt.Fprintln(w, b); err != nil {
			return err
		}
	}
	return nil
}

// PrintPlan writes one domain's plan to the pass's output when it is a dry run (the pass then returns
// without acting). Outside a dry run it prints nothing: the apply's own results are logged and recorded.
func PrintPlan(env TaskEnv, p Plan) {
	if !env.DryRun || env.Out == nil {
		return
	}
	_ = WritePlans(env.Out, p)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
