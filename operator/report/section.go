package report

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Section is one domain's contribution to the compliance report: its checks, each derived from the
// domain's own decision, and its figures.
type Section struct {
	Checks []Check
	// Err is the read error behind the section's checks, if any; each check already says it (status error).
	Err error
	// CertDays feeds the certificate chart (certificates domain only).
	CertDays     []CertDaysBar
	CertDaysNote string
	// Ages are credential ages against their max ages (tokens, unlock key, root CA).
	Ages []AgeBar
	// Findings feed the workload findings chart (workloads domain only).
	Findings []FindingBar
}

// New assembles a report from the domains' sections, given in the order of the domain list: the CIS
// checks first in benchmark order (4.1, 5.x, then 7.1 to 7.9), then every other check in the order of its section. Each
// check's evidence is sorted by subject, and a status not known here counts as error.
func New(generatedAt time.Time, swarmID string, sections ...Section) Report {
	r := Report{GeneratedAt: generatedAt.UTC(), SwarmID: swarmID, Benchmark: Benchmark}
	var cis, own []Check
	for _, s := range sections {
		for _, c := range s.Checks {
			if c.CIS != "" {
				cis = append(cis, c)
			} else {
				own = append(own, c)
			}
		}
		if s.CertDays != nil || s.CertDaysNote != "" {
			r.Charts.CertDays, r.Charts.CertDaysNote = s.CertDays, s.CertDaysNote
		}
		r.Charts.Ages = append(r.Charts.Ages, s.Ages...)
		r.Charts.Findings = append(r.Charts.Findings, s.Findings...)
		r.Charts.drawAges = r.Charts.drawAges || s.Ages != nil
		r.Charts.drawFindings = r.Charts.drawFindings || s.Findings != nil
	}
	slices.SortStableFunc(cis, func(a, b Check) int { return compareCIS(a.CIS, b.CIS) })
	r.Checks = append(cis, own...)
	for i := range r.Checks {
		SortEvidence(&r.Checks[i])
		if r.Checks[i].Evidence == nil {
			r.Checks[i].Evidence = []Evidence{}
		}
		switch r.Checks[i].Status {
		case StatusPass:
			r.Summary.Pass++
		case StatusWarn:
			r.Summary.Warn++
		case StatusFail:
			r.Summary.Fail++
		case StatusInfo:
			r.Summary.Info++
		default:
			r.Checks[i].Status = StatusError
			r.Summary.Error++
		}
	}
	return r
}

// compareCIS orders recommendation numbers numerically, part by part ("7.9" before "7.10").
func compareCIS(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, errx := strconv.Atoi(pa[i])
		y, erry := strconv.Atoi(pb[i])
		if errx != nil || erry != nil {
			if c := strings.Compare(pa[i], pb[i]); c != 0 {
				return c
			}
			continue
		}
		if x != y {
			return x - y
		}
	}
	return len(pa) - len(pb)
}

// AgeStatus is the chart's colour of a credential age: info when unknown, warn without a max age, fail
// when due (the domain's decision), else pass.
func AgeStatus(known, due bool, maxAge time.Duration) CheckStatus {
	switch {
	case !known:
		return StatusInfo
	case maxAge <= 0:
		return StatusWarn
	case due:
		return StatusFail
	}
	return StatusPass
}
