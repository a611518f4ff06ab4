package secrets

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/swarmguard/swarmguard/sensitive"
)

// Limits and label keys.
const (
	// MaxSecretSize is Docker's limit on a secret's data (500 KB).
	MaxSecretSize = 500 * 1024
	// maxDockerNameLen is the longest Docker object name.
	maxDockerNameLen = 64
	// hashLen is how many hex digits of the HMAC end a secret's name.
	hashLen = 8
	// MaxMappingNameLen leaves room for "-" and the 8 hex digits.
	MaxMappingNameLen = maxDockerNameLen - 1 - hashLen

	LabelManaged      = "swarmguard.managed"
	LabelSecret       = "swarmguard.secret"
	LabelSource       = "swarmguard.source"
	LabelVaultVersion = "swarmguard.vault-version"
	LabelHMAC         = "swarmguard.hmac"
	// LabelOptIn on a service lists mapping names it wants added:
	// swarmguard.secrets=db_password,api_key.
	LabelOptIn = "swarmguard.secrets"
	// LabelStackNamespace marks a service deployed by `docker stack deploy`.
	LabelStackNamespace = "com.docker.stack.namespace"
	// labelPrefix is reserved for swarmguard's own labels.
	labelPrefix = "swarmguard."
)

// OptInLabel returns the label key that sets one of the opted-in secret's
// reference fields: field is "target", "uid", "gid" or "mode".
func OptInLabel(name, field string) string { return LabelOptIn + "." + name + "." + field }

// dockerName is Docker's rule for secret names (daemon/cluster/convert).
var dockerName = regexp.MustCompile(`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`)

// Mapping says which Vault value becomes which Docker secret.
type Mapping struct {
	// Name is the secret's name; each version is named <Name>-<8 hex>.
	Name string
	// FromPath is the Vault path as `vault kv get` takes it: secret/apps/db.
	FromPath string
	// FromKey picks one field. Exactly one of FromKey and Template is set.
	FromKey string
	// Template is a Go text/template over the fields (for an env file or
	// JSON); a missing field is an error.
	Template string
	// Refresh is how often the controller looks; 0 means the caller's default.
	Refresh time.Duration
	// KeepVersions is how many versions to keep, the current one included
	// (less than 1 counts as 1). Older versions go once nothing refers to them.
	KeepVersions int
	// Labels are added to every version's Docker secret.
	Labels map[string]string
}

// FieldError is one problem with a named field; the caller prefixes the
// field with where the mapping sits (secrets.mappings[2].).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap makes every FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Validate checks the mapping and returns every problem (errors.Join of
// *FieldError).
func (m Mapping) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	switch {
	case m.Name == "":
		add("name", "is empty")
	case len(m.Name) > MaxMappingNameLen:
		add("name", "%q is %d characters; at most %d, so that %q-<8 hex> fits Docker's %d", m.Name, len(m.Name), MaxMappingNameLen, m.Name, maxDockerNameLen)
	case !dockerName.MatchString(m.Name):
		add("name", "%q is not a valid Docker secret name (letters, digits, '-', '_' and '.'; starting and ending with a letter or digit)", m.Name)
	case strings.Contains(m.Name, ","):
		add("name", "%q contains a comma", m.Name)
	}
	if _, err := cleanPath(m.FromPath); err != nil {
		add("from.path", "is empty (a path as `vault kv get` takes it, e.g. secret/apps/db)")
	}
	switch {
	case m.FromKey == "" && m.Template == "":
		add("from.key", "set either from.key (one field) or template")
	case m.FromKey != "" && m.Template != "":
		add("template", "set either from.key or template, not both")
	case m.Template != "":
		if _, err := parseTemplate(m); err != nil {
			add("template", "does not parse: %v", err)
		}
	}
	if m.Refresh < 0 {
		add("refresh", "%s is negative", m.Refresh)
	}
	if m.KeepVersions < 0 {
		add("keep_versions", "%d is negative", m.KeepVersions)
	}
	for k := range m.Labels {
		if strings.HasPrefix(k, labelPrefix) {
			add("labels", "%q: the prefix %q is swarmguard's own", k, labelPrefix)
		}
	}
	return errors.Join(errs...)
}

func parseTemplate(m Mapping) (*template.Template, error) {
	return template.New(m.Name).Option("missingkey=error").Parse(m.Template)
}

// Render makes the secret's data from the fields read from Vault: the one
// field, or the template over all fields. Errors name the mapping, never a
// value.
func (m Mapping) Render(v Value) (sensitive.Value, error) {
	var out sensitive.Value
	if m.FromKey != "" {
		f, ok := v.Field(m.FromKey)
		if !ok {
			return sensitive.Value{}, fmt.Errorf("mapping %q: %w: %q has no key %q (keys: %s)", m.Name, ErrNotFound, v.Path, m.FromKey, strings.Join(v.Keys(), ", "))
		}
		out = f
	} else {
		t, err := parseTemplate(m)
		if err != nil {
			return sensitive.Value{}, fmt.Errorf("mapping %q: %w: template does not parse: %v", m.Name, ErrInvalid, err)
		}
		fields := v.reveal()
		var buf bytes.Buffer
		if err := t.Execute(&buf, fields); err != nil {
			msg := err.Error()
			// Template errors can quote what they were working on; drop the
			// detail rather than risk a value in an error.
			for _, val := range fields {
				if val != "" && strings.Contains(msg, val) {
					msg = "the template failed on a field's value (detail withheld: it contains secret data)"
					break
				}
			}
			return sensitive.Value{}, fmt.Errorf("mapping %q: %w: rendering the template over %q: %s", m.Name, ErrInvalid, v.Path, msg)
		}
		out = sensitive.FromBytes(buf.Bytes())
	}
	if out.Len() > MaxSecretSize {
		return sensitive.Value{}, fmt.Errorf("mapping %q: %w: the value is %d bytes; Docker takes at most %d", m.Name, ErrInvalid, out.Len(), MaxSecretSize)
	}
	if out.Len() == 0 {
		return sensitive.Value{}, fmt.Errorf("mapping %q: %w: the value is empty; Docker refuses empty secrets", m.Name, ErrInvalid)
	}
	return out, nil
}

// Source is what the label swarmguard.source says: path#key, or
// path#template.
func (m Mapping) Source() string {
	p, _ := cleanPath(m.FromPath)
	if m.FromKey != "" {
		return p + "#" + m.FromKey
	}
	return p + "#template"
}

// Keep is KeepVersions with its floor of 1.
func (m Mapping) Keep() int { return max(m.KeepVersions, 1) }

// HMAC is the keyed hash of data under the operator's key, in hex. It names
// and tells apart versions without storing anything derived from the value
// alone (a plain hash of a short password can be brute-forced).
func HMAC(key, data sensitive.Value) string {
	h := hmac.New(sha256.New, key.Bytes())
	h.Write(data.Bytes())
	return hex.EncodeToString(h.Sum(nil))
}

// SecretName is <name>-<first 8 hex of the HMAC>.
func SecretName(name, hmacHex string) string { return name + "-" + hmacHex[:hashLen] }

// IsVersionName says whether secret is named as a version of mapping name: name, a dash and the
// hashLen hex digits of the value's HMAC (SecretName).
func IsVersionName(name, secret string) bool {
	rest, ok := strings.CutPrefix(secret, name+"-")
	if !ok || len(rest) != hashLen {
		return false
	}
	for _, c := range rest {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Labels are the labels of the version with this HMAC and Vault version.
func (m Mapping) SecretLabels(hmacHex string, vaultVersion int) map[string]string {
	l := make(map[string]string, len(m.Labels)+5)
	for k, v := range m.Labels {
		l[k] = v
	}
	l[LabelManaged] = "true"
	l[LabelSecret] = m.Name
	l[LabelSource] = m.Source()
	l[LabelVaultVersion] = strconv.Itoa(vaultVersion)
	l[LabelHMAC] = hmacHex
	return l
}

// Desired is the version a mapping should be at: what was read and rendered.
type Desired struct {
	// Name is the Docker secret name of this version.
	Name string
	// HMAC is the full hex HMAC.
	HMAC string
	// VaultVersion is the KV v2 version, 0 on KV v1.
	VaultVersion int
	// Labels are the Docker secret's labels.
	Labels map[string]string
	// Data is the rendered value, for the create only.
	Data sensitive.Value
}

// Desire renders v for m and names the result.
func (m Mapping) Desire(key sensitive.Value, v Value) (Desired, error) {
	data, err := m.Render(v)
	if err != nil {
		return Desired{}, err
	}
	h := HMAC(key, data)
	return Desired{Name: SecretName(m.Name, h), HMAC: h, VaultVersion: v.Version, Labels: m.SecretLabels(h, v.Version), Data: data}, nil
}
