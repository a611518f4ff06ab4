package secrets

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Secret is a Docker secret as the plan sees it.
type Secret struct {
	ID        string
	Name      string
	Labels    map[string]string
	CreatedAt time.Time
}

// SecretRef is one secret a service (or task) mounts.
type SecretRef struct {
	SecretID   string `json:"secret_id,omitempty"`
	SecretName string `json:"secret_name"`
	// File is the target: a file name under /run/secrets or an absolute path.
	File string `json:"file"`
	UID  string `json:"uid"`
	GID  string `json:"gid"`
	Mode uint32 `json:"mode"`
}

// Update states a service can report (Docker's UpdateStatus.State).
const (
	UpdateUpdating          = "updating"
	UpdatePaused            = "paused"
	UpdateCompleted         = "completed"
	UpdateRollbackStarted   = "rollback_started"
	UpdateRollbackPaused    = "rollback_paused"
	UpdateRollbackCompleted = "rollback_completed"
)

// Service is a swarm service as the plan sees it.
type Service struct {
	ID      string
	Name    string
	Version uint64
	Labels  map[string]string
	// Secrets are the refs of the current spec; PreviousSecrets those of
	// the previous spec (what `docker service rollback` returns to).
	Secrets         []SecretRef
	PreviousSecrets []SecretRef
	// UpdateState is UpdateStatus.State, empty when the service has none.
	UpdateState     string
	UpdateMessage   string
	UpdateStartedAt time.Time
	// Stack is the com.docker.stack.namespace label, if any.
	Stack string
	// Replicas is the replica count of a replicated service; nil for global ones.
	Replicas *uint64
}

// Task is one task with the secrets its spec mounts and the privileges its spec sets (what the workload
// hardening's rollout judges its tasks by).
type Task struct {
	ID           string
	ServiceID    string
	State        string // Status.State: running, failed, shutdown...
	DesiredState string
	Secrets      []SecretRef
	// NoNewPrivileges and SeccompMode are the task spec's privileges ("" when no seccomp mode is set).
	NoNewPrivileges bool
	SeccompMode     string
}

// holdsSecrets says whether a task in this state may still have its
// secrets mounted: everything that has not ended.
func (t Task) holdsSecrets() bool {
	switch t.State {
	case "complete", "failed", "shutdown", "rejected", "orphaned", "remove":
		return false
	}
	return true
}

// Observation is what one pass read from the engine: the managed secrets,
// all services and all tasks, one list call each.
type Observation struct {
	Secrets  []Secret
	Services []Service
	Tasks    []Task
}

// Version is one version of a mapping's Docker secret.
type Version struct {
	ID           string    `json:"id,omitempty"`
	Name         string    `json:"name"`
	VaultVersion int       `json:"vault_version"`
	HMAC         string    `json:"-"`
	CreatedAt    time.Time `json:"created_at,omitzero"`
}

// ServiceUpdate is one service to point at the wanted version.
type ServiceUpdate struct {
	ServiceID   string `json:"service_id"`
	ServiceName string `json:"service_name"`
	// Version is the service's version the update is written against.
	Version uint64 `json:"version"`
	// From are the old secret names replaced; empty when Added.
	From []string `json:"from,omitempty"`
	// Added: the service opted in by label and gets the secret added.
	Added bool `json:"added,omitempty"`
	// Refs is the service's whole new secret list. The wanted version's
	// SecretID is empty until it is created.
	Refs  []SecretRef `json:"refs"`
	Stack string      `json:"stack,omitempty"`
}

// ServiceState is a dependent already on the wanted version whose update
// has not settled.
type ServiceState struct {
	ServiceID   string `json:"service_id"`
	ServiceName string `json:"service_name"`
	State       string `json:"state"`
	Message     string `json:"message,omitempty"`
}

// Plan is what one pass would do for one mapping. It is a pure function of
// the mapping, the wanted version and the observation ([ComputePlan]).
type Plan struct {
	Mapping string `json:"mapping"`
	Source  string `json:"source"`
	// Current is the version the dependents use now (the newest one they
	// refer to), else the newest that exists; nil when none exists.
	Current *Version `json:"current"`
	Wanted  Version  `json:"wanted"`
	// Create is the version to create; nil when it exists (a retry finds
	// its work done).
	Create   *Version        `json:"create"`
	Updates  []ServiceUpdate `json:"updates"`
	Settling []ServiceState  `json:"settling,omitempty"`
	Remove   []Version       `json:"remove"`
	Warnings []string        `json:"warnings"`
	// Dependents are the services that use (or opted in to) the secret.
	Dependents []string `json:"dependents"`
}

// Changes reports whether applying the plan writes anything.
func (p Plan) Changes() bool { return p.Create != nil || len(p.Updates) > 0 || len(p.Remove) > 0 }

// ManagedVersions returns the Docker secrets that are versions of mapping
// name, by label and name.
func ManagedVersions(name string, all []Secret) []Secret {
	var out []Secret
	for _, s := range all {
		if s.Labels[LabelManaged] == "true" && s.Labels[LabelSecret] == name && isVersionName(name, s.Name) {
			out = append(out, s)
		}
	}
	return out
}

func isVersionName(name, secret string) bool {
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

func versionOf(s Secret) Version {
	n, _ := strconv.Atoi(s.Labels[LabelVaultVersion])
	return Version{ID: s.ID, Name: s.Name, VaultVersion: n, HMAC: s.Labels[LabelHMAC], CreatedAt: s.CreatedAt}
}

// optIn reports whether svc lists name in its swarmguard.secrets label.
func optIn(svc Service, name string) bool {
	for n := range strings.SplitSeq(svc.Labels[LabelOptIn], ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

func stackOf(svc Service) string {
	if svc.Stack != "" {
		return svc.Stack
	}
	return svc.Labels[LabelStackNamespace]
}

// DefaultMode is the mode of a secret added to an opted-in service, as
// `docker service create --secret` gives.
const DefaultMode = 0o444

// optInRef is the ref an opted-in service gets, from its labels.
func optInRef(svc Service, name, wanted string) (SecretRef, error) {
	ref := SecretRef{SecretName: wanted, File: name, UID: "0", GID: "0", Mode: DefaultMode}
	if t := svc.Labels[OptInLabel(name, "target")]; t != "" {
		ref.File = t
	}
	if u := svc.Labels[OptInLabel(name, "uid")]; u != "" {
		ref.UID = u
	}
	if g := svc.Labels[OptInLabel(name, "gid")]; g != "" {
		ref.GID = g
	}
	if m := svc.Labels[OptInLabel(name, "mode")]; m != "" {
		n, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			return ref, fmt.Errorf("label %s=%q is not an octal mode (example: 0400)", OptInLabel(name, "mode"), m)
		}
		ref.Mode = uint32(n)
	}
	return ref, nil
}

// planService decides what svc needs for mapping m to be on wanted. isOld
// tells whether a ref is an older version of m. It returns the update (nil
// when none is needed), whether svc depends on m at all, and a warning.
func planService(m Mapping, wanted Version, svc Service, isOld func(SecretRef) bool) (*ServiceUpdate, bool, string) {
	var from []string
	uses := false
	refs := make([]SecretRef, 0, len(svc.Secrets)+1)
	seen := map[string]bool{} // targets of refs to m, to drop duplicates
	for _, r := range svc.Secrets {
		switch {
		case r.SecretName == wanted.Name:
			uses = true
			if seen[r.File] {
				continue
			}
			seen[r.File] = true
			refs = append(refs, r)
		case isOld(r):
			uses = true
			from = append(from, r.SecretName)
			if seen[r.File] {
				continue
			}
			seen[r.File] = true
			nr := r
			nr.SecretID, nr.SecretName = wanted.ID, wanted.Name
			refs = append(refs, nr)
		default:
			refs = append(refs, r)
		}
	}
	if uses {
		if len(from) == 0 {
			return nil, true, ""
		}
		return &ServiceUpdate{ServiceID: svc.ID, ServiceName: svc.Name, Version: svc.Version, From: from, Refs: refs, Stack: stackOf(svc)}, true, ""
	}
	if !optIn(svc, m.Name) {
		return nil, false, ""
	}
	ref, err := optInRef(svc, m.Name, wanted.Name)
	if err != nil {
		return nil, true, fmt.Sprintf("service %s opts in to %s but %v; not added", svc.Name, m.Name, err)
	}
	ref.SecretID = wanted.ID
	for _, r := range svc.Secrets {
		if r.File == ref.File {
			return nil, true, fmt.Sprintf("service %s opts in to %s at target %q, but secret %s is mounted there; not added (set label %s)",
				svc.Name, m.Name, ref.File, r.SecretName, OptInLabel(m.Name, "target"))
		}
	}
	refs = append(refs, ref)
	return &ServiceUpdate{ServiceID: svc.ID, ServiceName: svc.Name, Version: svc.Version, Added: true, Refs: refs, Stack: stackOf(svc)}, true, ""
}

// oldVersionTest tells whether a ref is an older version of a mapping whose wanted version is wanted: a
// managed secret labelled as the mapping's (by ID, or by name). A secret that only looks like a version
// (app-20240101 beside mapping app) is the service's own and is never taken over.
func oldVersionTest(wanted string, byID, byName map[string]Secret) func(SecretRef) bool {
	return func(r SecretRef) bool {
		if r.SecretName == wanted {
			return false
		}
		if _, ok := byID[r.SecretID]; ok && r.SecretID != "" {
			return true
		}
		_, ok := byName[r.SecretName]
		return ok
	}
}

// isOld is the old-version test of mapping name over the indexed observation.
func (ix *Index) isOld(name, wanted string) func(SecretRef) bool {
	byID, byName := map[string]Secret{}, map[string]Secret{}
	for _, s := range ix.versions[name] {
		byID[s.ID], byName[s.Name] = s, s
	}
	return oldVersionTest(wanted, byID, byName)
}

// Index is an observation arranged for planning many mappings: versions
// grouped by mapping, the services that use or opt in to each mapping, and
// everything any spec or live task refers to. Build it once per observation.
type Index struct {
	versions   map[string][]Secret // by mapping name
	dependents map[string][]int    // mapping name -> indexes into services
	services   []Service           // sorted by name
	referenced map[string]bool     // secret IDs and names that something refers to
	byID       map[string]Service  // services by ID
}

// NewIndex arranges obs for planning.
func NewIndex(obs Observation) *Index {
	ix := &Index{versions: map[string][]Secret{}, dependents: map[string][]int{}, referenced: map[string]bool{}}
	byID := make(map[string]string, len(obs.Secrets))   // ID -> mapping
	byName := make(map[string]string, len(obs.Secrets)) // name -> mapping
	for _, s := range obs.Secrets {
		name := s.Labels[LabelSecret]
		if s.Labels[LabelManaged] == "true" && isVersionName(name, s.Name) {
			ix.versions[name] = append(ix.versions[name], s)
			byID[s.ID], byName[s.Name] = name, name
		}
	}
	ix.byID = make(map[string]Service, len(obs.Services))
	for _, svc := range obs.Services {
		ix.byID[svc.ID] = svc
	}
	ix.services = slices.SortedFunc(slices.Values(obs.Services), func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	mark := func(refs []SecretRef) {
		for _, r := range refs {
			if r.SecretID != "" {
				ix.referenced[r.SecretID] = true
			}
			ix.referenced[r.SecretName] = true
		}
	}
	for i, svc := range ix.services {
		mark(svc.Secrets)
		mark(svc.PreviousSecrets)
		seen := map[string]bool{}
		add := func(m string) {
			if m != "" && !seen[m] {
				seen[m] = true
				ix.dependents[m] = append(ix.dependents[m], i)
			}
		}
		for _, r := range svc.Secrets {
			if m, ok := byID[r.SecretID]; ok {
				add(m)
			}
			if m, ok := byName[r.SecretName]; ok {
				add(m)
			}
		}
		for n := range strings.SplitSeq(svc.Labels[LabelOptIn], ",") {
			add(strings.TrimSpace(n))
		}
	}
	for _, t := range obs.Tasks {
		if t.holdsSecrets() {
			mark(t.Secrets)
		}
	}
	return ix
}

// ComputePlan decides, for mapping m whose Vault value renders to want,
// what to create, which services to update and which versions to remove.
// It only reads its inputs. For many mappings over one observation, build
// an [Index] once and call its Plan.
func ComputePlan(m Mapping, want Desired, obs Observation) Plan {
	return NewIndex(obs).Plan(m, want)
}

// Plan is [ComputePlan] over the indexed observation.
func (ix *Index) Plan(m Mapping, want Desired) Plan {
	p := Plan{Mapping: m.Name, Source: m.Source(), Updates: []ServiceUpdate{}, Remove: []Version{}, Warnings: []string{}, Dependents: []string{}}
	versions := ix.versions[m.Name]
	wanted := Version{Name: want.Name, VaultVersion: want.VaultVersion, HMAC: want.HMAC}
	byID := make(map[string]Secret, len(versions))
	byName := make(map[string]Secret, len(versions))
	for _, s := range versions {
		byID[s.ID] = s
		byName[s.Name] = s
	}
	if s, ok := byName[want.Name]; ok {
		wanted.ID, wanted.CreatedAt = s.ID, s.CreatedAt
	} else {
		c := wanted
		p.Create = &c
	}
	p.Wanted = wanted
	isOld := oldVersionTest(wanted.Name, byID, byName)

	inUse := map[string]bool{} // versions the dependents' current specs use
	for _, i := range ix.dependents[m.Name] {
		svc := ix.services[i]
		for _, r := range svc.Secrets {
			if r.SecretName == wanted.Name || isOld(r) {
				inUse[r.SecretName] = true
			}
		}
		up, dep, warn := planService(m, wanted, svc, isOld)
		if warn != "" {
			p.Warnings = append(p.Warnings, warn)
		}
		if dep {
			p.Dependents = append(p.Dependents, svc.Name)
		}
		if up != nil {
			p.Updates = append(p.Updates, *up)
			if up.Stack != "" {
				p.Warnings = append(p.Warnings, fmt.Sprintf(
					"service %s is from stack %s: the next `docker stack deploy` puts its compose file's secret back; name the secret in the compose file from `swarmguard secrets current %s` (external: true)",
					svc.Name, up.Stack, m.Name))
			}
			continue
		}
		if dep {
			switch svc.UpdateState {
			case UpdateUpdating, UpdatePaused, UpdateRollbackStarted, UpdateRollbackPaused:
				p.Settling = append(p.Settling, ServiceState{ServiceID: svc.ID, ServiceName: svc.Name, State: svc.UpdateState, Message: svc.UpdateMessage})
			}
		}
	}

	// Newest first: the wanted version, then by creation, then Vault version.
	ordered := make([]Version, 0, len(versions))
	for _, s := range versions {
		if s.Name != wanted.Name {
			ordered = append(ordered, versionOf(s))
		}
	}
	slices.SortFunc(ordered, func(a, b Version) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.VaultVersion, a.VaultVersion), cmp.Compare(a.Name, b.Name))
	})
	for _, v := range ordered {
		if p.Current == nil && inUse[v.Name] {
			c := v
			p.Current = &c
		}
	}
	if p.Current == nil && (inUse[wanted.Name] || p.Create == nil) {
		c := wanted
		p.Current = &c
	}
	if p.Current == nil && len(ordered) > 0 {
		c := ordered[0]
		p.Current = &c
	}
	keep := m.Keep()
	for i, v := range ordered {
		rank := i + 1 // the wanted version is rank 0
		if rank < keep || ix.referenced[v.ID] || ix.referenced[v.Name] {
			continue
		}
		p.Remove = append(p.Remove, v)
	}
	return p
}

// Newest returns the newest version of mapping name that exists (by
// creation, then Vault version): what `swarmguard secrets current` prints
// for a compose file to name.
func Newest(name string, all []Secret) (Version, bool) {
	var best Version
	found := false
	for _, s := range ManagedVersions(name, all) {
		v := versionOf(s)
		if !found || v.CreatedAt.After(best.CreatedAt) || (v.CreatedAt.Equal(best.CreatedAt) && v.VaultVersion > best.VaultVersion) {
			best, found = v, true
		}
	}
	return best, found
}
