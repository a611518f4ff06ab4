package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
)

// Status is a check's verdict.
type CheckStatus string

// Check statuses, from best to worst. error means the check could not be evaluated (a read failed).
const (
	StatusPass  CheckStatus = "pass"
	StatusInfo  CheckStatus = "info"
	StatusWarn  CheckStatus = "warn"
	StatusFail  CheckStatus = "fail"
	StatusError CheckStatus = "error"
)

// rank orders statuses: pass < info < warn < fail < error. Error ranks above fail, because a check that
// could not run must never hide behind one that failed nor let a gate pass; a status not known here ranks
// as error.
func (s CheckStatus) rank() int {
	switch s {
	case StatusPass:
		return 0
	case StatusInfo:
		return 1
	case StatusWarn:
		return 2
	case StatusFail:
		return 3
	}
	return 4
}

// Evidence is one observed subject of a check: what was looked at, the values seen, and its own verdict.
type Evidence struct {
	Subject string            `json:"subject"`
	Status  CheckStatus       `json:"status,omitempty"`
	Facts   map[string]string `json:"facts,omitempty"`
	Note    string            `json:"note,omitempty"`
}

// Check is one compliance check with its evidence.
type Check struct {
	ID          string      `json:"id"`
	Title       string      `json:"title"`
	CIS         string      `json:"cis,omitempty"` // CIS Docker Benchmark v1.6.0 recommendation, "7.3"
	Status      CheckStatus `json:"status"`
	Summary     string      `json:"summary"`
	Evidence    []Evidence  `json:"evidence"`
	Remediation string      `json:"remediation"`
}

func (c Check) Errored(err error) Check {
	c.Status = StatusError
	c.Summary = "could not be evaluated: " + err.Error()
	c.Evidence = append(c.Evidence, Evidence{Subject: "read error", Status: StatusError, Note: err.Error()})
	return c
}

// Summary counts the checks by status.
type Summary struct {
	Pass  int `json:"pass"`
	Warn  int `json:"warn"`
	Fail  int `json:"fail"`
	Info  int `json:"info"`
	Error int `json:"error"`
}

// Report is every report swarmguard prints: `swarmguard report` (every domain's checks) and `swarmguard
// report certs` (the certificate domain's checks and the certificates behind them), as of GeneratedAt. Every
// report has one status scale (CheckStatus), one summary, one fail_on gate (Fails) and the same renderers.
type Report struct {
	GeneratedAt time.Time `json:"generated_at"`
	SwarmID     string    `json:"swarm_id"`
	Benchmark   string    `json:"benchmark,omitempty"`
	Summary     Summary   `json:"summary"`
	Checks      []Check   `json:"checks"`
	// Charts are the figures the HTML report draws; not part of the JSON document.
	Charts Charts `json:"-"`
	// Title heads the report; DefaultTitle when empty.
	Title string `json:"-"`
	// Facts are header lines shown above the checks (report certs: the root CA, the policy).
	Facts []Fact `json:"-"`
	// Listings list what the report observed, subject by subject (report certs: every node's certificate);
	// table, Markdown and HTML show them after the checks.
	Listings []Listing `json:"-"`
	// Document holds the report's own JSON fields (report certs: ca, node_cert_expiry, nodes, findings):
	// it must marshal to a JSON object, whose fields the JSON rendering writes before the report's
	// (generated_at, swarm_id, summary, checks). nil for none.
	Document any `json:"-"`
}

// DefaultTitle heads a report that names no Title: the compliance report.
const DefaultTitle = "swarmguard compliance report"

// Fact is one header line of a report: a label and its value.
type Fact struct {
	Label string
	Value string
}

// Listing is a list of observed subjects (one row each) with their status on the report's scale. The
// renderers put the status first (a STATUS column), then the cells under Header.
type Listing struct {
	Title  string
	Header []string
	Rows   []Row
	// Notes are lines shown under the table (a subject that could not be read, and why).
	Notes []string
}

// Row is one subject of a Listing: its status and one cell per Header column.
type Row struct {
	Status CheckStatus
	Cells  []string
}

func (r Report) title() string {
	if r.Title == "" {
		return DefaultTitle
	}
	return r.Title
}

// Benchmark names the benchmark the cis ids refer to.
const Benchmark = "CIS Docker Benchmark v1.6.0, sections 4 and 5 (judged per service spec) and 7 (Docker Swarm configuration)"

// Charts hold the series of the HTML report's figures.
type Charts struct {
	// CertDays is each node's certificate days left; a Total of 0 says it could not be read.
	CertDays []CertDaysBar
	// CertDaysNote explains an empty or partial CertDays.
	CertDaysNote string
	// Ages are credential ages against their max ages.
	Ages []AgeBar
	// Findings are the workload checks' services at fail and warn, per check.
	Findings []FindingBar
	// drawAges and drawFindings say that some section gave the series (New sets them, even to an empty
	// one): the HTML draws only those charts, an empty one with its note. The certificate chart is drawn
	// when CertDays is not nil or CertDaysNote says why it is.
	drawAges, drawFindings bool
}

// FindingBar is one workload check's count of services found wanting, out of Total.
type FindingBar struct {
	Check      string
	Fail, Warn int
	Total      int
}

// CertDaysBar is one node's certificate remaining lifetime.
type CertDaysBar struct {
	Node     string
	DaysLeft float64
	Total    float64 // validity in days, for scale
	Status   CheckStatus
	// WarnDays and CriticalDays are how many days before its end the certificate enters the policy's warn
	// and critical windows (a percentage window differs per certificate); 0 draws no band.
	WarnDays, CriticalDays float64
}

// AgeBar is one credential's age against its max age (MaxAge 0: no policy).
type AgeBar struct {
	Name   string
	Age    time.Duration
	MaxAge time.Duration
	Known  bool
	Note   string
	Status CheckStatus
}

// Worse returns the worse of two statuses, by rank.
func Worse(a, b CheckStatus) CheckStatus {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Worst is the worst status in the report (pass when there are no checks).
func (r Report) Worst() CheckStatus {
	w := StatusPass
	for _, c := range r.Checks {
		w = Worse(w, c.Status)
	}
	return w
}

// Fail-on gate values.
const (
	FailOnNone = "none"
	FailOnWarn = "warn"
	FailOnFail = "fail"
)

// Fails is the one report.fail_on gate, for every report (the compliance report and `report certs`): it
// says whether a report whose worst status is worst fails. failOn "warn" fails on warn, fail or error;
// "fail" on fail or error; "none" never. With no gate set ("") only an error fails: a report with a check
// that could not be evaluated must not pass a script unnoticed, while findings alone are the report's
// content.
func Fails(worst CheckStatus, failOn string) bool {
	switch failOn {
	case FailOnNone:
		return false
	case FailOnWarn:
		return worst.rank() >= StatusWarn.rank()
	case FailOnFail:
		return worst.rank() >= StatusFail.rank()
	}
	return worst.rank() >= StatusError.rank()
}

// Fails applies the report.fail_on gate (see Fails) to the report's worst check.
func (r Report) Fails(failOn string) bool { return Fails(r.Worst(), failOn) }

// SortEvidence orders a check's evidence by subject, so that a report reads the same on every run.
func SortEvidence(c *Check) {
	sort.SliceStable(c.Evidence, func(i, j int) bool { return c.Evidence[i].Subject < c.Evidence[j].Subject })
}

// DurationOrNone prints a policy duration, or "none" when it is not set.
func DurationOrNone(d time.Duration) string {
	if d <= 0 {
		return "none"
	}
	return config.Duration(d).String()
}

// RoundAge prints an age to a useful precision: days and hours beyond a day, else minutes or seconds.
func RoundAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d >= 24*time.Hour:
		days := int(d / (24 * time.Hour))
		hours := int((d % (24 * time.Hour)) / time.Hour)
		return fmt.Sprintf("%dd%dh", days, hours)
	case d >= time.Hour:
		return d.Truncate(time.Minute).String()
	case d >= time.Minute:
		return d.Truncate(time.Second).String()
	}
	return d.Truncate(time.Second).String()
}

// MetricCheckStatus is the metric of every check's status (see CheckGauges).
const MetricCheckStatus = "swarmguard_check_status"

// Gauge is one metric sample; operator's runtime (or anything else) exports it without this package
// importing a metrics library.
type Gauge struct {
	Name   string
	Help   string
	Labels map[string]string
	Value  float64
}

// CheckGauges are swarmguard_check_status{check} (0 pass, 1 warn, 2 fail). info and error checks have no
// sample: a missing series says "not judged", a made-up value would lie.
func CheckGauges(checks []Check) []Gauge {
	out := make([]Gauge, 0, len(checks))
	for _, c := range checks {
		var v float64
		switch c.Status {
		case StatusPass:
			v = 0
		case StatusWarn:
			v = 1
		case StatusFail:
			v = 2
		default:
			continue
		}
		out = append(out, Gauge{Name: MetricCheckStatus, Help: "Compliance check status: 0 pass, 1 warn, 2 fail.",
			Labels: map[string]string{"check": c.ID}, Value: v})
	}
	return out
}

// ListOrNone joins a list for a fact, or says "none".
func ListOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// OrUnknown is a fact, or "unknown" when it was not observed.
func OrUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
