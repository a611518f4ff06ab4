package secrets

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/swarmguard/swarmguard/sensitive"
)

// redacted is what every printing path of a secret-bearing type writes.
const redacted = "REDACTED"

// Value is what one KV read returned: the fields of the secret at a path and
// what Vault says about that version. Fields are [sensitive.Value]; the Value
// itself prints only its path, version and field names.
type Value struct {
	// Path is the path as given (as `vault kv get` takes it).
	Path string
	// Mount is the KV mount the path lies under, with a trailing slash.
	Mount string
	// KVVersion is the mount's KV engine version, 1 or 2.
	KVVersion int
	// Version is the KV v2 version of the data. KV v1 keeps no versions, so
	// it is 0 there; change detection then rests on the HMAC alone.
	Version int
	// CreatedTime is when this version was written (KV v2 only).
	CreatedTime time.Time
	// CustomMetadata is the KV v2 custom metadata of the path (not secret).
	CustomMetadata map[string]string

	fields map[string]sensitive.Value
}

// NewValue builds a Value from plain fields; for fakes and tests.
func NewValue(path string, version int, fields map[string]string) Value {
	v := Value{Path: path, KVVersion: 2, Version: version, fields: make(map[string]sensitive.Value, len(fields))}
	if version == 0 {
		v.KVVersion = 1
	}
	for k, f := range fields {
		v.fields[k] = sensitive.New(f)
	}
	return v
}

// Field returns one field.
func (v Value) Field(key string) (sensitive.Value, bool) {
	f, ok := v.fields[key]
	return f, ok
}

// Keys returns the field names, sorted.
func (v Value) Keys() []string { return slices.Sorted(maps.Keys(v.fields)) }

// reveal returns the fields as plain strings, for the template only.
func (v Value) reveal() map[string]string {
	m := make(map[string]string, len(v.fields))
	for k, f := range v.fields {
		m[k] = f.Reveal()
	}
	return m
}

func (v Value) summary() string {
	return "secrets.Value{path=" + v.Path + " kv=v" + strconv.Itoa(v.KVVersion) + " version=" + strconv.Itoa(v.Version) +
		" keys=" + fmt.Sprint(v.Keys()) + " data=" + redacted + "}"
}

// String implements fmt.Stringer; it names the path, version and keys only.
func (v Value) String() string { return v.summary() }

// GoString implements fmt.GoStringer.
func (v Value) GoString() string { return v.summary() }

// Format implements fmt.Formatter, so %v, %+v and %#v never reach the fields.
func (v Value) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, v.summary()) }

// LogValue implements slog.LogValuer.
func (v Value) LogValue() slog.Value {
	return slog.GroupValue(slog.String("path", v.Path), slog.Int("kv_version", v.KVVersion),
		slog.Int("version", v.Version), slog.Any("keys", v.Keys()))
}

// MarshalJSON implements json.Marshaler without the data.
func (v Value) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Path      string   `json:"path"`
		KVVersion int      `json:"kv_version"`
		Version   int      `json:"version"`
		Keys      []string `json:"keys"`
		Data      string   `json:"data"`
	}{v.Path, v.KVVersion, v.Version, v.Keys(), redacted})
}
