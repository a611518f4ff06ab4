package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/swarmguard/swarmguard/sensitive"
)

// mountCacheTTL is how long a detected KV mount version is trusted. Mounts
// change rarely (an upgrade with `vault kv enable-versioning`); a few
// minutes keeps steady-state passes at one Vault read per mapping.
const mountCacheTTL = 5 * time.Minute

// KV reads and writes Vault KV secrets by the path `vault kv get` takes
// (secret/apps/db), detecting whether the mount is KV v1 or v2.
type KV struct {
	logical *api.Logical
	now     func() time.Time

	mu     sync.Mutex
	mounts map[string]mountInfo // by mount path, "secret/"
	// lookup is held while a mount is looked up: the sync's concurrent reads of paths under one mount ask
	// Vault once, the others wait for its answer and find it in mounts.
	lookup sync.Mutex
}

type mountInfo struct {
	path    string
	version int
	seen    time.Time
}

func newKV(l *api.Logical) *KV {
	return &KV{logical: l, now: time.Now, mounts: map[string]mountInfo{}}
}

// cleanPath trims slashes and spaces; an empty result is an error.
func cleanPath(p string) (string, error) {
	p = strings.Trim(strings.TrimSpace(p), "/")
	if p == "" {
		return "", fmt.Errorf("%w: empty vault path", ErrInvalid)
	}
	return p, nil
}

// mount finds the KV mount of path and its version, through
// sys/internal/ui/mounts/<path> (what `vault kv` uses), cached per mount.
func (kv *KV) mount(ctx context.Context, path string) (mountInfo, error) {
	if mi, ok := kv.cachedMount(path); ok {
		return mi, nil
	}
	kv.lookup.Lock()
	defer kv.lookup.Unlock()
	if mi, ok := kv.cachedMount(path); ok {
		return mi, nil // found by the lookup this one waited for
	}
	apiPath := "sys/internal/ui/mounts/" + path
	sec, err := kv.logical.ReadWithContext(ctx, apiPath)
	if err != nil {
		err = vaultError("detecting the kv version of", apiPath, err)
		if errors.Is(err, ErrPermissionDenied) {
			// Vault answers 403 for a path under no mount too, so say both.
			mountName, _, _ := strings.Cut(path, "/")
			return mountInfo{}, fmt.Errorf("%w (or no secrets engine is mounted at %q/: `vault secrets list` shows the mounts)", err, mountName)
		}
		return mountInfo{}, err
	}
	if sec == nil || sec.Data == nil {
		return mountInfo{}, fmt.Errorf("detecting the kv version of %q: %w: no secrets engine is mounted there", path, ErrNotFound)
	}
	mp, _ := sec.Data["path"].(string)
	typ, _ := sec.Data["type"].(string)
	if mp == "" {
		return mountInfo{}, fmt.Errorf("detecting the kv version of %q: %w: no secrets engine is mounted there", path, ErrNotFound)
	}
	if typ != "kv" && typ != "generic" {
		return mountInfo{}, fmt.Errorf("%w: %q is under mount %q of type %q, not a kv secrets engine", ErrInvalid, path, mp, typ)
	}
	ver := 1
	if opts, ok := sec.Data["options"].(map[string]any); ok {
		if s, ok := opts["version"].(string); ok && s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return mountInfo{}, fmt.Errorf("detecting the kv version of %q: mount %q says version %q", path, mp, s)
			}
			ver = n
		}
	}
	if ver != 1 && ver != 2 {
		return mountInfo{}, fmt.Errorf("%w: mount %q is kv version %d; swarmguard reads versions 1 and 2", ErrInvalid, mp, ver)
	}
	mi := mountInfo{path: mp, version: ver, seen: kv.now()}
	kv.mu.Lock()
	kv.mounts[mp] = mi
	kv.mu.Unlock()
	return mi, nil
}

// cachedMount is the cached mount of path, if one is fresh.
func (kv *KV) cachedMount(path string) (mountInfo, bool) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	var best mountInfo
	for mp, mi := range kv.mounts {
		if strings.HasPrefix(path+"/", mp) && len(mp) > len(best.path) && kv.now().Sub(mi.seen) < mountCacheTTL {
			best = mi
		}
	}
	return best, best.path != ""
}

// Read returns the newest version of the secret at path. A path or version
// that does not exist (or was deleted) is ErrNotFound; a failed request is
// ErrUnreachable or ErrPermissionDenied, never "absent".
func (kv *KV) Read(ctx context.Context, path string) (Value, error) {
	return kv.ReadVersion(ctx, path, 0)
}

// ReadVersion returns one KV v2 version (0 means the newest). On KV v1 only
// 0 is valid.
func (kv *KV) ReadVersion(ctx context.Context, path string, version int) (Value, error) {
	p, err := cleanPath(path)
	if err != nil {
		return Value{}, err
	}
	mi, err := kv.mount(ctx, p)
	if err != nil {
		return Value{}, err
	}
	rest := strings.TrimPrefix(p, strings.TrimSuffix(mi.path, "/"))
	rest = strings.TrimPrefix(rest, "/")
	v := Value{Path: p, Mount: mi.path, KVVersion: mi.version}
	if mi.version == 1 {
		if version != 0 {
			return Value{}, fmt.Errorf("%w: reading version %d of %q: mount %q is kv v1, which keeps no versions", ErrInvalid, version, p, mi.path)
		}
		sec, err := kv.logical.ReadWithContext(ctx, p)
		if err != nil {
			return Value{}, vaultError("reading", p, err)
		}
		if sec == nil || sec.Data == nil {
			return Value{}, fmt.Errorf("reading %q from vault: %w", p, ErrNotFound)
		}
		v.fields = toFields(sec.Data)
		return v, nil
	}
	apiPath := mi.path + "data/" + rest
	var q map[string][]string
	if version > 0 {
		q = map[string][]string{"version": {strconv.Itoa(version)}}
	}
	sec, err := kv.logical.ReadWithDataWithContext(ctx, apiPath, q)
	if err != nil {
		return Value{}, vaultError("reading", apiPath, err)
	}
	if sec == nil || sec.Data == nil {
		return Value{}, fmt.Errorf("reading %q from vault: %w", p, ErrNotFound)
	}
	data, _ := sec.Data["data"].(map[string]any)
	md, _ := sec.Data["metadata"].(map[string]any)
	if data == nil {
		return Value{}, fmt.Errorf("reading %q from vault: %w (the version was deleted or destroyed)", p, ErrNotFound)
	}
	v.fields = toFields(data)
	if n, ok := jsonInt(md["version"]); ok {
		v.Version = n
	}
	if s, ok := md["created_time"].(string); ok {
		v.CreatedTime, _ = time.Parse(time.RFC3339Nano, s)
	}
	if cm, ok := md["custom_metadata"].(map[string]any); ok {
		v.CustomMetadata = make(map[string]string, len(cm))
		for k, x := range cm {
			v.CustomMetadata[k] = fmt.Sprint(x)
		}
	}
	return v, nil
}

// toFields turns Vault's JSON fields into sensitive.Value strings: strings as
// they are, anything else (numbers, booleans, objects) as its JSON.
func toFields(m map[string]any) map[string]sensitive.Value {
	out := make(map[string]sensitive.Value, len(m))
	for k, x := range m {
		switch t := x.(type) {
		case string:
			out[k] = sensitive.New(t)
		case json.Number:
			out[k] = sensitive.New(t.String())
		default:
			b, err := json.Marshal(t)
			if err != nil {
				continue
			}
			out[k] = sensitive.FromBytes(b)
		}
	}
	return out
}

// VersionInfo is one KV v2 version in the metadata.
type VersionInfo struct {
	Version      int
	CreatedTime  time.Time
	DeletionTime time.Time
	Destroyed    bool
}

// Metadata is what KV v2 keeps about a path. On KV v1 only Path, Mount and
// KVVersion are set: v1 keeps no metadata.
type Metadata struct {
	Path           string
	Mount          string
	KVVersion      int
	CurrentVersion int
	OldestVersion  int
	CreatedTime    time.Time
	UpdatedTime    time.Time
	CustomMetadata map[string]string
	Versions       []VersionInfo // oldest first
}

// Metadata reads the KV v2 metadata of path.
func (kv *KV) Metadata(ctx context.Context, path string) (Metadata, error) {
	p, err := cleanPath(path)
	if err != nil {
		return Metadata{}, err
	}
	mi, err := kv.mount(ctx, p)
	if err != nil {
		return Metadata{}, err
	}
	md := Metadata{Path: p, Mount: mi.path, KVVersion: mi.version}
	if mi.version == 1 {
		return md, nil
	}
	apiPath := mi.path + "metadata/" + strings.TrimPrefix(strings.TrimPrefix(p, strings.TrimSuffix(mi.path, "/")), "/")
	sec, err := kv.logical.ReadWithContext(ctx, apiPath)
	if err != nil {
		return Metadata{}, vaultError("reading metadata", apiPath, err)
	}
	if sec == nil || sec.Data == nil {
		return Metadata{}, fmt.Errorf("reading metadata of %q from vault: %w", p, ErrNotFound)
	}
	d := sec.Data
	md.CurrentVersion, _ = jsonInt(d["current_version"])
	md.OldestVersion, _ = jsonInt(d["oldest_version"])
	md.CreatedTime = parseTime(d["created_time"])
	md.UpdatedTime = parseTime(d["updated_time"])
	if cm, ok := d["custom_metadata"].(map[string]any); ok {
		md.CustomMetadata = map[string]string{}
		for k, x := range cm {
			md.CustomMetadata[k] = fmt.Sprint(x)
		}
	}
	if vs, ok := d["versions"].(map[string]any); ok {
		for k, x := range vs {
			n, err := strconv.Atoi(k)
			if err != nil {
				continue
			}
			vi := VersionInfo{Version: n}
			if m, ok := x.(map[string]any); ok {
				vi.CreatedTime = parseTime(m["created_time"])
				vi.DeletionTime = parseTime(m["deletion_time"])
				vi.Destroyed, _ = m["destroyed"].(bool)
			}
			md.Versions = append(md.Versions, vi)
		}
		sortVersions(md.Versions)
	}
	return md, nil
}

func sortVersions(v []VersionInfo) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j].Version < v[j-1].Version; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

func parseTime(x any) time.Time {
	s, _ := x.(string)
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// WriteCAS writes data to path on a KV v2 mount with check-and-set: cas is
// the version the caller saw (0: the path must not exist yet; negative: no
// check). It then reads the new version back and compares it, so the caller
// knows the value is stored before it counts a step as done (the unlock-key
// escrow). A lost race is ErrConflict: re-read and decide again.
func (kv *KV) WriteCAS(ctx context.Context, path string, data map[string]string, cas int) (int, error) {
	p, err := cleanPath(path)
	if err != nil {
		return 0, err
	}
	mi, err := kv.mount(ctx, p)
	if err != nil {
		return 0, err
	}
	if mi.version != 2 {
		return 0, fmt.Errorf("%w: writing %q: check-and-set needs kv v2, mount %q is kv v1 (vault kv enable-versioning %s)", ErrInvalid, p, mi.path, mi.path)
	}
	apiPath := mi.path + "data/" + strings.TrimPrefix(strings.TrimPrefix(p, strings.TrimSuffix(mi.path, "/")), "/")
	body := map[string]any{"data": data}
	if cas >= 0 {
		body["options"] = map[string]any{"cas": cas}
	}
	sec, err := kv.logical.WriteWithContext(ctx, apiPath, body)
	if err != nil {
		return 0, vaultError("writing", apiPath, err)
	}
	if sec == nil || sec.Data == nil {
		return 0, fmt.Errorf("writing %q to vault: no version in the answer", p)
	}
	ver, ok := jsonInt(sec.Data["version"])
	if !ok {
		return 0, fmt.Errorf("writing %q to vault: no version in the answer", p)
	}
	back, err := kv.ReadVersion(ctx, p, ver)
	if err != nil {
		return ver, fmt.Errorf("reading back version %d of %q: %w", ver, p, err)
	}
	if !sameFields(back, data) {
		return ver, fmt.Errorf("reading back version %d of %q: the stored fields differ from those written", ver, p)
	}
	return ver, nil
}

func sameFields(v Value, data map[string]string) bool {
	if len(v.fields) != len(data) {
		return false
	}
	for k, want := range data {
		got, ok := v.fields[k]
		if !ok || !got.Equal(sensitive.New(want)) {
			return false
		}
	}
	return true
}
