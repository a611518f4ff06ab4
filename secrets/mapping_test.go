package secrets

import (
	"errors"
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/sensitive"
)

func TestMappingValidate(t *testing.T) {
	ok := Mapping{Name: "db_password", FromPath: "secret/apps/db", FromKey: "password", KeepVersions: 2}
	tests := []struct {
		name string
		m    Mapping
		want []string // substrings, one per expected problem
	}{
		{"valid key", ok, nil},
		{"valid template", Mapping{Name: "app.env", FromPath: "secret/app", Template: "USER={{.user}}\nPASS={{.password}}\n"}, nil},
		{"name 55 chars", Mapping{Name: strings.Repeat("a", 55), FromPath: "p/x", FromKey: "k"}, nil},
		{"name 56 chars", Mapping{Name: strings.Repeat("a", 56), FromPath: "p/x", FromKey: "k"}, []string{"name: ", "at most 55"}},
		{"empty name", Mapping{FromPath: "p/x", FromKey: "k"}, []string{"name: is empty"}},
		{"bad name", Mapping{Name: "db pass", FromPath: "p/x", FromKey: "k"}, []string{`name: "db pass" is not a valid Docker secret name`}},
		{"name ends in dash", Mapping{Name: "db-", FromPath: "p/x", FromKey: "k"}, []string{"not a valid Docker secret name"}},
		{"no path", Mapping{Name: "a", FromKey: "k"}, []string{"from.path: is empty"}},
		{"neither", Mapping{Name: "a", FromPath: "p/x"}, []string{"from.key: set either"}},
		{"both", Mapping{Name: "a", FromPath: "p/x", FromKey: "k", Template: "x"}, []string{"template: set either"}},
		{"bad template", Mapping{Name: "a", FromPath: "p/x", Template: "{{.x"}, []string{"template: does not parse"}},
		{"negative", Mapping{Name: "a", FromPath: "p/x", FromKey: "k", KeepVersions: -1, Refresh: -1}, []string{"keep_versions: -1 is negative", "refresh: "}},
		{"reserved label", Mapping{Name: "a", FromPath: "p/x", FromKey: "k", Labels: map[string]string{"swarmguard.secret": "x"}}, []string{"labels: \"swarmguard.secret\""}},
		{"many problems", Mapping{Name: "a b", Template: "{{"}, []string{"name:", "from.path:", "template:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate() = %v; want errors.Is ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to contain %q", err, w)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("Validate() = %v; want a *FieldError inside", err)
			}
		})
	}
}

func TestRender(t *testing.T) {
	v := NewValue("secret/apps/db", 4, map[string]string{"user": "app", "password": leak})
	tests := []struct {
		name    string
		m       Mapping
		want    string
		wantErr string
	}{
		{"key", Mapping{Name: "db", FromKey: "password"}, leak, ""},
		{"template", Mapping{Name: "db", Template: "U={{.user}} P={{.password}}"}, "U=app P=" + leak, ""},
		{"missing key", Mapping{Name: "db", FromKey: "pass"}, "", `mapping "db": not found: "secret/apps/db" has no key "pass" (keys: password, user)`},
		{"template missing field", Mapping{Name: "db", Template: "{{.nope}}"}, "", `mapping "db": invalid: rendering the template`},
		{"template error quoting a value", Mapping{Name: "db", Template: `{{index .password 99}}`}, "", `mapping "db": invalid: rendering the template`},
		{"empty", Mapping{Name: "db", Template: "{{/* nothing */}}"}, "", "the value is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.m.Render(v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Render() error = %v; want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("Render() error leaks the value: %v", err)
				}
				return
			}
			if err != nil || got.Reveal() != tt.want {
				t.Fatalf("Render() = %q, %v; want %q", got.Reveal(), err, tt.want)
			}
		})
	}
}

func TestRenderTooLarge(t *testing.T) {
	big := strings.Repeat("x", MaxSecretSize+1)
	_, err := Mapping{Name: "big", FromKey: "k"}.Render(NewValue("p/x", 1, map[string]string{"k": big}))
	if err == nil || !strings.Contains(err.Error(), `mapping "big"`) || !strings.Contains(err.Error(), "512001 bytes") {
		t.Fatalf("Render(500 KB + 1) error = %v; want one naming the mapping and the size", err)
	}
	if _, err := (Mapping{Name: "big", FromKey: "k"}).Render(NewValue("p/x", 1, map[string]string{"k": big[1:]})); err != nil {
		t.Fatalf("Render(500 KB) error = %v; want nil", err)
	}
}

func TestDesireNaming(t *testing.T) {
	key := sensitive.New("operator-key")
	m := Mapping{Name: "db_password", FromPath: "/secret/apps/db/", FromKey: "password", Labels: map[string]string{"team": "core"}}
	d1, err := m.Desire(key, NewValue("secret/apps/db", 7, map[string]string{"password": "v1"}))
	if err != nil {
		t.Fatal(err)
	}
	d1b, _ := m.Desire(key, NewValue("secret/apps/db", 8, map[string]string{"password": "v1"}))
	d2, _ := m.Desire(key, NewValue("secret/apps/db", 9, map[string]string{"password": "v2"}))
	dk, _ := m.Desire(sensitive.New("other-key"), NewValue("secret/apps/db", 7, map[string]string{"password": "v1"}))
	if d1.Name != d1b.Name {
		t.Errorf("same value gave %s and %s; want the same name", d1.Name, d1b.Name)
	}
	if d1.Name == d2.Name || d1.Name == dk.Name {
		t.Errorf("different value or key gave the same name %s", d1.Name)
	}
	if !IsVersionName("db_password", d1.Name) || len(d1.HMAC) != 64 || d1.Name != "db_password-"+d1.HMAC[:8] {
		t.Errorf("Desire().Name = %s, HMAC %s; want db_password-<first 8 of the HMAC>", d1.Name, d1.HMAC)
	}
	want := map[string]string{LabelManaged: "true", LabelSecret: "db_password", LabelSource: "secret/apps/db#password",
		LabelVaultVersion: "7", LabelHMAC: d1.HMAC, "team": "core"}
	for k, v := range want {
		if d1.Labels[k] != v {
			t.Errorf("label %s = %q; want %q", k, d1.Labels[k], v)
		}
	}
	if len(d1.Labels) != len(want) {
		t.Errorf("labels = %v; want %v", d1.Labels, want)
	}
	if got := (Mapping{Name: "e", FromPath: "kv/x", Template: "{{.a}}"}).Source(); got != "kv/x#template" {
		t.Errorf("Source() = %q; want kv/x#template", got)
	}
}
