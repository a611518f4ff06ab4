package secretsync

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func ver(name string, vv int, age time.Duration) swarm.Secret {
	return swarm.Secret{ID: "id-" + name, Name: name, CreatedAt: t0.Add(-age), Labels: map[string]string{
		secrets.LabelManaged: "true", secrets.LabelSecret: strings.SplitN(name, "-", 2)[0], secrets.LabelVaultVersion: strconv.Itoa(vv), secrets.LabelHMAC: name}}
}

func ref(name, file string) swarm.SecretRef {
	return swarm.SecretRef{SecretID: "id-" + name, SecretName: name, File: file, UID: "1000", GID: "1001", Mode: 0o400}
}

func TestComputePlan(t *testing.T) {
	m := secrets.Mapping{Name: "db", FromPath: "secret/apps/db", FromKey: "password", KeepVersions: 1}
	const v1, v2, v3 = "db-11111111", "db-22222222", "db-33333333"
	want := secrets.Desired{Name: v2, HMAC: "22222222ff", VaultVersion: 2}
	other := swarm.SecretRef{SecretID: "id-other", SecretName: "other", File: "other", UID: "0", GID: "0", Mode: 0o444}

	type exp struct {
		current string
		create  bool
		updates []string // service names
		remove  []string
		warn    []string // substrings
		settle  []string
	}
	tests := []struct {
		name string
		m    secrets.Mapping
		obs  Observation
		exp  exp
	}{
		{
			name: "first pass, nothing exists, nobody uses it",
			obs:  Observation{},
			exp:  exp{create: true},
		},
		{
			name: "steady state",
			obs: Observation{Secrets: []swarm.Secret{ver(v2, 2, 0)},
				Services: []swarm.ServiceSecrets{{ID: "a", Name: "api", Secrets: []swarm.SecretRef{ref(v2, "db_password")}}}},
			exp: exp{current: v2},
		},
		{
			name: "rotation: two services share v1",
			obs: Observation{Secrets: []swarm.Secret{ver(v1, 1, time.Hour)},
				Services: []swarm.ServiceSecrets{
					{ID: "b", Name: "worker", Secrets: []swarm.SecretRef{other, ref(v1, "pw")}},
					{ID: "a", Name: "api", Secrets: []swarm.SecretRef{ref(v1, "db_password")}},
					{ID: "c", Name: "unrelated", Secrets: []swarm.SecretRef{other}},
				}},
			exp: exp{current: v1, create: true, updates: []string{"api", "worker"}},
		},
		{
			name: "retry after a crash: v2 exists, services still on v1",
			obs: Observation{Secrets: []swarm.Secret{ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []swarm.ServiceSecrets{{ID: "a", Name: "api", Secrets: []swarm.SecretRef{ref(v1, "db_password")}}}},
			exp: exp{current: v1, updates: []string{"api"}},
		},
		{
			name: "clean-up with keep 1: v1 unused",
			obs: Observation{Secrets: []swarm.Secret{ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []swarm.ServiceSecrets{{ID: "a", Name: "api", Secrets: []swarm.SecretRef{ref(v2, "db_password")}}}},
			exp: exp{current: v2, remove: []string{v1}},
		},
		{
			name: "keep 2 keeps v1",
			m:    secrets.Mapping{Name: "db", FromPath: "secret/apps/db", FromKey: "password", KeepVersions: 2},
			obs: Observation{Secrets: []swarm.Secret{ver(v3, 3, 2*time.Hour), ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []swarm.ServiceSecrets{{ID: "a", Name: "api", Secrets: []swarm.SecretRef{ref(v2, "db_password")}}}},
			exp: exp{current: v2, remove: []string{v3}},
		},
		{
			name: "previous spec keeps v1",
			obs: Observation{Secrets: []swarm.Secret{ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []swarm.ServiceSecrets{{ID: "a", Name: "api", Secrets: []swarm.SecretRef{ref(v2, "db_password")}, PreviousSecrets: []swarm.SecretRef{ref(v1, "db_password")}}}},
			exp: exp{current: v2},
		},
		{
			name: "running task keeps v1, a shut down one does not keep v3",
			obs: Observation{Secrets: []swarm.Secret{ver(v3, 3, 2*time.Hour), ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []swarm.ServiceSecrets{{ID: "a", Name: "api", Secrets: []swarm.SecretRef{ref(v2, "db_password")}}},
				Tasks: []swarm.TaskSecrets{
					{ID: "t1", ServiceID: "a", State: "running", DesiredState: "shutdown", Secrets: []swarm.SecretRef{ref(v1, "db_password")}},
					{ID: "t2", ServiceID: "a", State: "shutdown", DesiredState: "shutdown", Secrets: []swarm.SecretRef{ref(v3, "db_password")}},
				}},
			exp: exp{current: v2, remove: []string{v3}},
		},
		{
			name: "referenced by name only (ID missing) is still referenced",
			obs: Observation{Secrets: []swarm.Secret{ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []swarm.ServiceSecrets{{ID: "a", Name: "api", Secrets: []swarm.SecretRef{ref(v2, "db_password")}, PreviousSecrets: []swarm.SecretRef{{SecretName: v1, File: "x"}}}}},
			exp: exp{current: v2},
		},
		{
			name: "opt-in by label gets it added",
			obs: Observation{Secrets: []swarm.Secret{ver(v2, 2, 0)},
				Services: []swarm.ServiceSecrets{{ID: "o", Name: "optin", Secrets: []swarm.SecretRef{other},
					Labels: map[string]string{secrets.LabelOptIn: "x, db", secrets.OptInLabel("db", "target"): "/etc/app/db.pw", secrets.OptInLabel("db", "mode"): "0400"}}}},
			exp: exp{current: v2, updates: []string{"optin"}},
		},
		{
			name: "opt-in for another mapping only",
			obs: Observation{Secrets: []swarm.Secret{ver(v2, 2, 0)},
				Services: []swarm.ServiceSecrets{{ID: "o", Name: "optin", Labels: map[string]string{secrets.LabelOptIn: "dbx"}}}},
			exp: exp{current: v2},
		},
		{
			name: "opt-in whose target is taken",
			obs: Observation{Secrets: []swarm.Secret{ver(v2, 2, 0)},
				Services: []swarm.ServiceSecrets{{ID: "o", Name: "optin", Secrets: []swarm.SecretRef{other},
					Labels: map[string]string{secrets.LabelOptIn: "db", secrets.OptInLabel("db", "target"): "other"}}}},
			exp: exp{current: v2, warn: []string{`service optin opts in to db at target "other", but secret other is mounted there`}},
		},
		{
			name: "opt-in with a bad mode",
			obs: Observation{Secrets: []swarm.Secret{ver(v2, 2, 0)},
				Services: []swarm.ServiceSecrets{{ID: "o", Name: "optin", Labels: map[string]string{secrets.LabelOptIn: "db", secrets.OptInLabel("db", "mode"): "rw"}}}},
			exp: exp{current: v2, warn: []string{`swarmguard.secrets.db.mode="rw" is not an octal mode`}},
		},
		{
			name: "stack service warns",
			obs: Observation{Secrets: []swarm.Secret{ver(v1, 1, time.Hour)},
				Services: []swarm.ServiceSecrets{{ID: "a", Name: "shop_api", Labels: map[string]string{secrets.LabelStackNamespace: "shop"}, Secrets: []swarm.SecretRef{ref(v1, "db")}}}},
			exp: exp{current: v1, create: true, updates: []string{"shop_api"}, warn: []string{"service shop_api is from stack shop", "swarmguard secrets current db"}},
		},
		{
			name: "a look-alike without our labels is not ours",
			obs: Observation{Secrets: []swarm.Secret{ver(v2, 2, 0), {ID: "id-dbx", Name: "db-aaaaaaaa", Labels: map[string]string{secrets.LabelManaged: "true", secrets.LabelSecret: "dbx"}}},
				Services: []swarm.ServiceSecrets{{ID: "a", Name: "api", Secrets: []swarm.SecretRef{ref(v2, "db_password")}}}},
			exp: exp{current: v2},
		},
		{
			name: "paused dependent settles",
			obs: Observation{Secrets: []swarm.Secret{ver(v2, 2, 0)},
				Services: []swarm.ServiceSecrets{{ID: "a", Name: "api", UpdateState: swarm.UpdatePaused, Secrets: []swarm.SecretRef{ref(v2, "db_password")}}}},
			exp: exp{current: v2, settle: []string{"api"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := m
			if tt.m.Name != "" {
				mm = tt.m
			}
			p := ComputePlan(mm, want, tt.obs)
			cur := ""
			if p.Current != nil {
				cur = p.Current.Name
			}
			if cur != tt.exp.current {
				t.Errorf("Current = %q; want %q", cur, tt.exp.current)
			}
			if p.Wanted.Name != v2 || p.Wanted.VaultVersion != 2 {
				t.Errorf("Wanted = %+v; want %s at vault version 2", p.Wanted, v2)
			}
			if (p.Create != nil) != tt.exp.create {
				t.Errorf("Create = %v; want create=%v", p.Create, tt.exp.create)
			}
			var ups []string
			for _, u := range p.Updates {
				ups = append(ups, u.ServiceName)
			}
			if !slices.Equal(ups, tt.exp.updates) {
				t.Errorf("Updates = %v; want %v", ups, tt.exp.updates)
			}
			var rm []string
			for _, r := range p.Remove {
				rm = append(rm, r.Name)
			}
			if !slices.Equal(rm, tt.exp.remove) {
				t.Errorf("Remove = %v; want %v", rm, tt.exp.remove)
			}
			var st []string
			for _, s := range p.Settling {
				st = append(st, s.ServiceName)
			}
			if !slices.Equal(st, tt.exp.settle) {
				t.Errorf("Settling = %v; want %v", st, tt.exp.settle)
			}
			if len(p.Warnings) != len(tt.exp.warn) && len(tt.exp.warn) < 2 {
				t.Errorf("Warnings = %q; want %d", p.Warnings, len(tt.exp.warn))
			}
			for _, w := range tt.exp.warn {
				if !strings.Contains(strings.Join(p.Warnings, "\n"), w) {
					t.Errorf("Warnings = %q; want one containing %q", p.Warnings, w)
				}
			}
			if p.Changes() != (tt.exp.create || len(tt.exp.updates) > 0 || len(tt.exp.remove) > 0) {
				t.Errorf("Changes() = %v", p.Changes())
			}
		})
	}
}

func TestPlanRefsKeepTargetOwnerMode(t *testing.T) {
	m := secrets.Mapping{Name: "db", FromPath: "secret/apps/db", FromKey: "password"}
	other := swarm.SecretRef{SecretID: "id-other", SecretName: "other", File: "other", UID: "0", GID: "0", Mode: 0o444}
	obs := Observation{
		Secrets: []swarm.Secret{ver("db-11111111", 1, time.Hour), ver("db-22222222", 2, 0)},
		Services: []swarm.ServiceSecrets{
			{ID: "a", Name: "api", Version: 42, Secrets: []swarm.SecretRef{other, ref("db-11111111", "db_password")}},
			{ID: "o", Name: "optin", Version: 7, Labels: map[string]string{secrets.LabelOptIn: "db", secrets.OptInLabel("db", "target"): "/etc/app/db.pw",
				secrets.OptInLabel("db", "uid"): "33", secrets.OptInLabel("db", "mode"): "0440"}},
			{ID: "d", Name: "defaults", Version: 3, Labels: map[string]string{secrets.LabelOptIn: "db"}},
		},
	}
	p := ComputePlan(m, secrets.Desired{Name: "db-22222222", VaultVersion: 2}, obs)
	want := []ServiceUpdate{
		{ServiceID: "a", ServiceName: "api", Version: 42, From: []string{"db-11111111"}, Refs: []swarm.SecretRef{other,
			{SecretID: "id-db-22222222", SecretName: "db-22222222", File: "db_password", UID: "1000", GID: "1001", Mode: 0o400}}},
		{ServiceID: "d", ServiceName: "defaults", Version: 3, Added: true, Refs: []swarm.SecretRef{
			{SecretID: "id-db-22222222", SecretName: "db-22222222", File: "db", UID: "0", GID: "0", Mode: 0o444}}},
		{ServiceID: "o", ServiceName: "optin", Version: 7, Added: true, Refs: []swarm.SecretRef{
			{SecretID: "id-db-22222222", SecretName: "db-22222222", File: "/etc/app/db.pw", UID: "33", GID: "0", Mode: 0o440}}},
	}
	if !reflect.DeepEqual(p.Updates, want) {
		t.Errorf("ComputePlan().Updates =\n%+v\nwant\n%+v", p.Updates, want)
	}
	if !slices.Equal(p.Dependents, []string{"api", "defaults", "optin"}) {
		t.Errorf("Dependents = %v", p.Dependents)
	}
}

// TestPlanRemovesWhatItsUpdatesRelease: the plan's removals are what nothing uses once its updates are in.
// A service the plan updates keeps its current spec as its previous one (v2 stays, for `docker service
// rollback`) and releases its old previous spec (v1 goes, in this very plan: the apply acts on it, and the
// next plan has nothing left to remove); v1 held by a service the plan does not update stays.
func TestPlanRemovesWhatItsUpdatesRelease(t *testing.T) {
	m := secrets.Mapping{Name: "db", FromPath: "secret/apps/db", FromKey: "password", KeepVersions: 1}
	const v1, v2, v3 = "db-11111111", "db-22222222", "db-33333333"
	want := secrets.Desired{Name: v3, HMAC: "33333333ff", VaultVersion: 3}
	api := swarm.ServiceSecrets{ID: "a", Name: "api", Secrets: []swarm.SecretRef{ref(v2, "pw")}, PreviousSecrets: []swarm.SecretRef{ref(v1, "pw")}}
	obs := Observation{Secrets: []swarm.Secret{ver(v1, 1, 2*time.Hour), ver(v2, 2, time.Hour)}, Services: []swarm.ServiceSecrets{api},
		Tasks: []swarm.TaskSecrets{{ID: "t1", ServiceID: "a", State: "running", DesiredState: "running", Secrets: []swarm.SecretRef{ref(v2, "pw")}},
			{ID: "t0", ServiceID: "a", State: "running", DesiredState: "shutdown", Secrets: []swarm.SecretRef{ref(v1, "pw")}}}}
	p := ComputePlan(m, want, obs)
	var removed []string
	for _, v := range p.Remove {
		removed = append(removed, v.Name)
	}
	if len(p.Updates) != 1 || !slices.Equal(removed, []string{v1}) {
		t.Errorf("plan: %d updates, removes %v; want api updated and %s removed (its update releases it), %s kept", len(p.Updates), removed, v1, v2)
	}

	// a service the plan does not update (it no longer uses the mapping) still holds v1 in its previous spec
	cron := swarm.ServiceSecrets{ID: "c", Name: "cron", Secrets: []swarm.SecretRef{}, PreviousSecrets: []swarm.SecretRef{ref(v1, "pw")}}
	obs.Services = append(obs.Services, cron)
	p = ComputePlan(m, want, obs)
	if len(p.Remove) != 0 {
		t.Errorf("plan removes %v; want nothing: cron's previous spec still uses %s", p.Remove, v1)
	}
}
