package secrets

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func ver(name string, vv int, age time.Duration) Secret {
	return Secret{ID: "id-" + name, Name: name, CreatedAt: t0.Add(-age), Labels: map[string]string{
		LabelManaged: "true", LabelSecret: strings.SplitN(name, "-", 2)[0], LabelVaultVersion: strconv.Itoa(vv), LabelHMAC: name}}
}

func ref(name, file string) SecretRef {
	return SecretRef{SecretID: "id-" + name, SecretName: name, File: file, UID: "1000", GID: "1001", Mode: 0o400}
}

func TestComputePlan(t *testing.T) {
	m := Mapping{Name: "db", FromPath: "secret/apps/db", FromKey: "password", KeepVersions: 1}
	const v1, v2, v3 = "db-11111111", "db-22222222", "db-33333333"
	want := Desired{Name: v2, HMAC: "22222222ff", VaultVersion: 2}
	other := SecretRef{SecretID: "id-other", SecretName: "other", File: "other", UID: "0", GID: "0", Mode: 0o444}

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
		m    Mapping
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
			obs: Observation{Secrets: []Secret{ver(v2, 2, 0)},
				Services: []Service{{ID: "a", Name: "api", Secrets: []SecretRef{ref(v2, "db_password")}}}},
			exp: exp{current: v2},
		},
		{
			name: "rotation: two services share v1",
			obs: Observation{Secrets: []Secret{ver(v1, 1, time.Hour)},
				Services: []Service{
					{ID: "b", Name: "worker", Secrets: []SecretRef{other, ref(v1, "pw")}},
					{ID: "a", Name: "api", Secrets: []SecretRef{ref(v1, "db_password")}},
					{ID: "c", Name: "unrelated", Secrets: []SecretRef{other}},
				}},
			exp: exp{current: v1, create: true, updates: []string{"api", "worker"}},
		},
		{
			name: "retry after a crash: v2 exists, services still on v1",
			obs: Observation{Secrets: []Secret{ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []Service{{ID: "a", Name: "api", Secrets: []SecretRef{ref(v1, "db_password")}}}},
			exp: exp{current: v1, updates: []string{"api"}},
		},
		{
			name: "clean-up with keep 1: v1 unused",
			obs: Observation{Secrets: []Secret{ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []Service{{ID: "a", Name: "api", Secrets: []SecretRef{ref(v2, "db_password")}}}},
			exp: exp{current: v2, remove: []string{v1}},
		},
		{
			name: "keep 2 keeps v1",
			m:    Mapping{Name: "db", FromPath: "secret/apps/db", FromKey: "password", KeepVersions: 2},
			obs: Observation{Secrets: []Secret{ver(v3, 3, 2*time.Hour), ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []Service{{ID: "a", Name: "api", Secrets: []SecretRef{ref(v2, "db_password")}}}},
			exp: exp{current: v2, remove: []string{v3}},
		},
		{
			name: "previous spec keeps v1",
			obs: Observation{Secrets: []Secret{ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []Service{{ID: "a", Name: "api", Secrets: []SecretRef{ref(v2, "db_password")}, PreviousSecrets: []SecretRef{ref(v1, "db_password")}}}},
			exp: exp{current: v2},
		},
		{
			name: "running task keeps v1, a shut down one does not keep v3",
			obs: Observation{Secrets: []Secret{ver(v3, 3, 2*time.Hour), ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []Service{{ID: "a", Name: "api", Secrets: []SecretRef{ref(v2, "db_password")}}},
				Tasks: []Task{
					{ID: "t1", ServiceID: "a", State: "running", DesiredState: "shutdown", Secrets: []SecretRef{ref(v1, "db_password")}},
					{ID: "t2", ServiceID: "a", State: "shutdown", DesiredState: "shutdown", Secrets: []SecretRef{ref(v3, "db_password")}},
				}},
			exp: exp{current: v2, remove: []string{v3}},
		},
		{
			name: "referenced by name only (ID missing) is still referenced",
			obs: Observation{Secrets: []Secret{ver(v1, 1, time.Hour), ver(v2, 2, time.Minute)},
				Services: []Service{{ID: "a", Name: "api", Secrets: []SecretRef{ref(v2, "db_password")}, PreviousSecrets: []SecretRef{{SecretName: v1, File: "x"}}}}},
			exp: exp{current: v2},
		},
		{
			name: "opt-in by label gets it added",
			obs: Observation{Secrets: []Secret{ver(v2, 2, 0)},
				Services: []Service{{ID: "o", Name: "optin", Secrets: []SecretRef{other},
					Labels: map[string]string{LabelOptIn: "x, db", OptInLabel("db", "target"): "/etc/app/db.pw", OptInLabel("db", "mode"): "0400"}}}},
			exp: exp{current: v2, updates: []string{"optin"}},
		},
		{
			name: "opt-in for another mapping only",
			obs: Observation{Secrets: []Secret{ver(v2, 2, 0)},
				Services: []Service{{ID: "o", Name: "optin", Labels: map[string]string{LabelOptIn: "dbx"}}}},
			exp: exp{current: v2},
		},
		{
			name: "opt-in whose target is taken",
			obs: Observation{Secrets: []Secret{ver(v2, 2, 0)},
				Services: []Service{{ID: "o", Name: "optin", Secrets: []SecretRef{other},
					Labels: map[string]string{LabelOptIn: "db", OptInLabel("db", "target"): "other"}}}},
			exp: exp{current: v2, warn: []string{`service optin opts in to db at target "other", but secret other is mounted there`}},
		},
		{
			name: "opt-in with a bad mode",
			obs: Observation{Secrets: []Secret{ver(v2, 2, 0)},
				Services: []Service{{ID: "o", Name: "optin", Labels: map[string]string{LabelOptIn: "db", OptInLabel("db", "mode"): "rw"}}}},
			exp: exp{current: v2, warn: []string{`swarmguard.secrets.db.mode="rw" is not an octal mode`}},
		},
		{
			name: "stack service warns",
			obs: Observation{Secrets: []Secret{ver(v1, 1, time.Hour)},
				Services: []Service{{ID: "a", Name: "shop_api", Labels: map[string]string{LabelStackNamespace: "shop"}, Secrets: []SecretRef{ref(v1, "db")}}}},
			exp: exp{current: v1, create: true, updates: []string{"shop_api"}, warn: []string{"service shop_api is from stack shop", "swarmguard secrets current db"}},
		},
		{
			name: "a look-alike without our labels is not ours",
			obs: Observation{Secrets: []Secret{ver(v2, 2, 0), {ID: "id-dbx", Name: "db-aaaaaaaa", Labels: map[string]string{LabelManaged: "true", LabelSecret: "dbx"}}},
				Services: []Service{{ID: "a", Name: "api", Secrets: []SecretRef{ref(v2, "db_password")}}}},
			exp: exp{current: v2},
		},
		{
			name: "paused dependent settles",
			obs: Observation{Secrets: []Secret{ver(v2, 2, 0)},
				Services: []Service{{ID: "a", Name: "api", UpdateState: UpdatePaused, Secrets: []SecretRef{ref(v2, "db_password")}}}},
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
	m := Mapping{Name: "db", FromPath: "secret/apps/db", FromKey: "password"}
	other := SecretRef{SecretID: "id-other", SecretName: "other", File: "other", UID: "0", GID: "0", Mode: 0o444}
	obs := Observation{
		Secrets: []Secret{ver("db-11111111", 1, time.Hour), ver("db-22222222", 2, 0)},
		Services: []Service{
			{ID: "a", Name: "api", Version: 42, Secrets: []SecretRef{other, ref("db-11111111", "db_password")}},
			{ID: "o", Name: "optin", Version: 7, Labels: map[string]string{LabelOptIn: "db", OptInLabel("db", "target"): "/etc/app/db.pw",
				OptInLabel("db", "uid"): "33", OptInLabel("db", "mode"): "0440"}},
			{ID: "d", Name: "defaults", Version: 3, Labels: map[string]string{LabelOptIn: "db"}},
		},
	}
	p := ComputePlan(m, Desired{Name: "db-22222222", VaultVersion: 2}, obs)
	want := []ServiceUpdate{
		{ServiceID: "a", ServiceName: "api", Version: 42, From: []string{"db-11111111"}, Refs: []SecretRef{other,
			{SecretID: "id-db-22222222", SecretName: "db-22222222", File: "db_password", UID: "1000", GID: "1001", Mode: 0o400}}},
		{ServiceID: "d", ServiceName: "defaults", Version: 3, Added: true, Refs: []SecretRef{
			{SecretID: "id-db-22222222", SecretName: "db-22222222", File: "db", UID: "0", GID: "0", Mode: 0o444}}},
		{ServiceID: "o", ServiceName: "optin", Version: 7, Added: true, Refs: []SecretRef{
			{SecretID: "id-db-22222222", SecretName: "db-22222222", File: "/etc/app/db.pw", UID: "33", GID: "0", Mode: 0o440}}},
	}
	if !reflect.DeepEqual(p.Updates, want) {
		t.Errorf("ComputePlan().Updates =\n%+v\nwant\n%+v", p.Updates, want)
	}
	if !slices.Equal(p.Dependents, []string{"api", "defaults", "optin"}) {
		t.Errorf("Dependents = %v", p.Dependents)
	}
}
