package main

import (
	"bytes"
	"errors"
	"github.com/swarmguard/swarmguard/operator/secretsync"
	"strings"
	"testing"
)

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"db_password": "DB_PASSWORD_SECRET", "app.env": "APP_ENV_SECRET", "Api-Key2": "API_KEY2_SECRET"} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestPlanAndRotateTables(t *testing.T) {
	p := &secretsync.Plan{Mapping: "db", Current: &secretsync.Version{Name: "db-11111111", VaultVersion: 1},
		Wanted: secretsync.Version{Name: "db-22222222", VaultVersion: 2}, Create: &secretsync.Version{Name: "db-22222222"},
		Updates:  []secretsync.ServiceUpdate{{ServiceName: "api"}, {ServiceName: "worker", Added: true}},
		Remove:   []secretsync.Version{{Name: "db-00000000"}},
		Warnings: []string{"service api is from stack shop"}}
	results := []secretsync.Result{
		{Mapping: "db", Outcome: secretsync.OutcomePlanned, Plan: p, VaultVersion: 2},
		{Mapping: "bad", Outcome: secretsync.OutcomeError, Err: errors.New("x"), Error: `mapping "bad": not found`},
	}
	var b bytes.Buffer
	if err := writePlanTable(&b, results); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"MAPPING", "db-11111111", "db-22222222", "api, worker (add)", "db-00000000", "db: warning: service api is from stack shop", `bad: error: mapping "bad": not found`} {
		if !strings.Contains(out, want) {
			t.Errorf("plan table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	results[0].Outcome, results[0].Created, results[0].Updated = secretsync.OutcomeChanged, "db-22222222", []string{"api", "worker"}
	if err := writeRotateTable(&b, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "changed") || !strings.Contains(b.String(), "api, worker") {
		t.Errorf("rotate table:\n%s", b.String())
	}
	if err := resultsErr(results); exitCode(err) != ExitFailed {
		t.Errorf("resultsErr() exit = %d; want %d", exitCode(err), ExitFailed)
	}
	if err := resultsErr(results[:1]); err != nil {
		t.Errorf("resultsErr(ok) = %v; want nil", err)
	}
}
