package operator

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWritePlans(t *testing.T) {
	var p Plan
	p.Domain = "tokens"
	p.Add("join-token-worker", "worker join token", "rotate worker token", "worker token older than 1s")
	p.Note("manager token not due")
	plans := []Plan{p, {Domain: "networks"}, Failed("secrets", errors.New("reading vault:\n  permission denied"))}
	var out bytes.Buffer
	if err := WritePlans(&out, plans...); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"DOMAIN", "join-token-worker", "would rotate worker token", "worker token older than 1s",
		"networks", "nothing to do", "secrets: error: reading vault: permission denied", "tokens: manager token not due",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("WritePlans = %q; want %q in it", out.String(), want)
		}
	}
	if strings.Count(out.String(), "\n") != 6 {
		t.Errorf("WritePlans = %q; want a header, 3 rows, an error and a note", out.String())
	}
}

func TestWritePlansJSON(t *testing.T) {
	var p Plan
	p.Domain = "certs"
	p.Add("node-cert-expiry", "cluster", "set it", "enforce")
	var out bytes.Buffer
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	if err := WritePlansJSON(&out, at, "swarm1", []Plan{p, {Domain: "networks"}, Failed("ca", errors.New("no root"))}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["generated_at"] != "2026-01-02T02:04:05Z" || doc["swarm_id"] != "swarm1" {
		t.Errorf("document = %v; want generated_at in UTC and swarm_id", doc)
	}
	ds := doc["domains"].([]any)
	first := ds[0].(map[string]any)
	act := first["actions"].([]any)[0].(map[string]any)
	if first["domain"] != "certs" || first["error"] != "" || act["kind"] != "node-cert-expiry" || act["subject"] != "cluster" || act["change"] != "set it" || act["reason"] != "enforce" {
		t.Errorf("domain 0 = %v; want certs with its action", first)
	}
	if acts, ok := ds[1].(map[string]any)["actions"].([]any); !ok || len(acts) != 0 {
		t.Errorf("domain 1 actions = %v; want [] (never null)", ds[1])
	}
	if ds[2].(map[string]any)["error"] != "no root" {
		t.Errorf("domain 2 = %v; want its error", ds[2])
	}
}

func TestPrintPlanOnlyInDryRun(t *testing.T) {
	var p Plan
	p.Domain = "x"
	p.Add("k", "s", "c", "r")
	var out bytes.Buffer
	PrintPlan(TaskEnv{Out: &out}, p)
	if out.Len() != 0 {
		t.Errorf("PrintPlan outside a dry run wrote %q; want nothing", out.String())
	}
	PrintPlan(TaskEnv{DryRun: true, Out: &out}, p)
	if !strings.Contains(out.String(), "would c") {
		t.Errorf("PrintPlan in a dry run wrote %q; want the plan", out.String())
	}
	if got := p.Kinds(); got["k"] != 1 || len(got) != 1 {
		t.Errorf("Kinds = %v; want k: 1", got)
	}
}
