package secretsync

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// holdsSecrets says whether a task in this state may still have its secrets mounted: everything that has
// not ended.
func holdsSecrets(t swarm.TaskSecrets) bool {
	switch t.State {
	case "complete", "failed", "shutdown", "rejected", "orphaned", "remove":
		return false
	}
	return true
}

// Observation is what one pass read from the engine: the managed secrets,
// all services and all tasks, one list call each.
type Observation struct {
	Secrets  []swarm.Secret
	Services []swarm.ServiceSecrets
	Tasks    []swarm.TaskSecrets
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
	Refs  []swarm.SecretRef `json:"refs"`
	Stack string            `json:"stack,omitempty"`
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
func ManagedVersions(name string, all []swarm.Secret) []swarm.Secret {
	var out []swarm.Secret
	for _, s := range all {
		if s.Labels[secrets.LabelManaged] == "true" && s.Labels[secrets.LabelSecret] == name && secrets.IsVersionName(name, s.Name) {
			out = append(out, s)
		}
	}
	return out
}

func versionOf(s swarm.Secret) Version {
	n, _ := strconv.Atoi(s.Labels[secrets.LabelVaultVersion])
	return Version{ID: s.ID, Name: s.Name, VaultVersion: n, HMAC: s.Labels[secrets.LabelHMAC], CreatedAt: s.CreatedAt}
}

// optIn reports whether svc lists name in its swarmguard.secrets label.
func optIn(svc swarm.ServiceSecrets, name string) bool {
	for n := range strings.SplitSeq(svc.Labels[secrets.LabelOptIn], ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

func stackOf(svc swarm.ServiceSecrets) string { return svc.Labels[secrets.LabelStackNamespace] }

// DefaultMode is the mode of a secret added to an opted-in service, as
// `docker service create --secret` gives.
const DefaultMode = 0o444

// optInRef is the ref an opted-in service gets, from its labels.
func optInRef(svc swarm.ServiceSecrets, name, wanted string) (swarm.SecretRef, error) {
	ref := swarm.SecretRef{SecretName: wanted, File: name, UID: "0", GID: "0", Mode: DefaultMode}
	if t := svc.Labels[secrets.OptInLabel(name, "target")]; t != "" {
		ref.File = t
	}
	if u := svc.Labels[secrets.OptInLabel(name, "uid")]; u != "" {
		ref.UID = u
	}
	if g := svc.Labels[secrets.OptInLabel(name, "gid")]; g != "" {
		ref.GID = g
	}
	if m := svc.Labels[secrets.OptInLabel(name, "mode")]; m != "" {
		n, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			return ref, fmt.Errorf("label %s=%q is not an octal mode (example: 0400)", secrets.OptInLabel(name, "mode"), m)
		}
		ref.Mode = uint32(n)
	}
	return ref, nil
}

// planService decides what svc needs for mapping m to be on wanted. isOld
// tells whether a ref is an older version of m. It returns the update (nil
// when none is needed), whether svc depends on m at all, and a warning.
func planService(m secrets.Mapping, wanted Version, svc swarm.ServiceSecrets, isOld func(swarm.SecretRef) bool) (*ServiceUpdate, bool, string) {
	var from []string
	uses := false
	refs := make([]swarm.SecretRef, 0, len(svc.Secrets)+1)
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
				svc.Name, m.Name, ref.File, r.SecretName, secrets.OptInLabel(m.Name, "target"))
		}
	}
	refs = append(refs, ref)
	return &ServiceUpdate{ServiceID: svc.ID, ServiceName: svc.Name, Version: svc.Version, Added: true, Refs: refs, Stack: stackOf(svc)}, true, ""
}

// oldVersionTest tells whether a ref is an older version of a mapping whose wanted version is wanted: a
// managed secret labelled as the mapping's (by ID, or by name). A secret that only looks like a version
// (app-20240101 beside mapping app) is the service's own and is never taken over.
func oldVersionTest(wanted string, byID, byName map[string]swarm.Secret) func(swarm.SecretRef) bool {
	return func(r swarm.SecretRef) bool {
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
func (ix *Index) isOld(name, wanted string) func(swarm.SecretRef) bool {
	byID, byName := map[string]swarm.Secret{}, map[string]swarm.Secret{}
	for _, s := range ix.versions[name] {
		byID[s.ID], byName[s.Name] = s, s
	}
	return oldVersionTest(wanted, byID, byName)
}

// Index is an observation arranged for planning many mappings: versions
// grouped by mapping, the services that use or opt in to each mapping, and
// everything any spec or live task refers to. Build it once per observation.
type Index struct {
	versions   map[string][]swarm.Secret       // by mapping name
	dependents map[string][]int                // mapping name -> indexes into services
	services   []swarm.ServiceSecrets          // sorted by name
	referenced map[string]bool                 // secret IDs and names that something refers to
	byID       map[string]swarm.ServiceSecrets // services by ID
	// inSpec are the secret IDs and names a service's current spec refers to; heldBy the services whose
	// previous spec or live tasks refer to a secret ID or name (an update of the service releases those).
	inSpec map[string]bool
	heldBy map[string]map[string]bool
}

// NewIndex arranges obs for planning.
func NewIndex(obs Observation) *Index {
	ix := &Index{versions: map[string][]swarm.Secret{}, dependents: map[string][]int{}, referenced: map[string]bool{},
		inSpec: map[string]bool{}, heldBy: map[string]map[string]bool{}}
	byID := make(map[string]string, len(obs.Secrets))   // ID -> mapping
	byName := make(map[string]string, len(obs.Secrets)) // name -> mapping
	for _, s := range obs.Secrets {
		name := s.Labels[secrets.LabelSecret]
		if s.Labels[secrets.LabelManaged] == "true" && secrets.IsVersionName(name, s.Name) {
			ix.versions[name] = append(ix.versions[name], s)
			byID[s.ID], byName[s.Name] = name, name
		}
	}
	ix.byID = make(map[string]swarm.ServiceSecrets, len(obs.Services))
	for _, svc := range obs.Services {
		ix.byID[svc.ID] = svc
	}
	ix.services = slices.SortedFunc(slices.Values(obs.Services), func(a, b swarm.ServiceSecrets) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	// mark records refs: in a current spec (service ""), or held by service (its previous spec, its tasks).
	mark := func(refs []swarm.SecretRef, service string, current bool) {
		for _, r := range refs {
			for _, k := range []string{r.SecretID, r.SecretName} {
				if k == "" {
					continue
				}
				ix.referenced[k] = true
				if current {
					ix.inSpec[k] = true
					continue
				}
				if ix.heldBy[k] == nil {
					ix.heldBy[k] = map[string]bool{}
				}
				ix.heldBy[k][service] = true
			}
		}
	}
	for i, svc := range ix.services {
		mark(svc.Secrets, svc.ID, true)
		mark(svc.PreviousSecrets, svc.ID, false)
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
		for n := range strings.SplitSeq(svc.Labels[secrets.LabelOptIn], ",") {
			add(strings.TrimSpace(n))
		}
	}
	for _, t := range obs.Tasks {
		if holdsSecrets(t) {
			mark(t.Secrets, t.ServiceID, false)
		}
	}
	return ix
}

// ComputePlan decides, for mapping m whose Vault value renders to want,
// what to create, which services to update and which versions to remove.
// It only reads its inputs. For many mappings over one observation, build
// an [Index] once and call its Plan.
func ComputePlan(m secrets.Mapping, want secrets.Desired, obs Observation) Plan {
	return NewIndex(obs).Plan(m, want)
}

// Plan is [ComputePlan] over the indexed observation.
func (ix *Index) Plan(m secrets.Mapping, want secrets.Desired) Plan {
	p := Plan{Mapping: m.Name, Source: m.Source(), Updates: []ServiceUpdate{}, Remove: []Version{}, Warnings: []string{}, Dependents: []string{}}
	versions := ix.versions[m.Name]
	wanted := Version{Name: want.Name, VaultVersion: want.VaultVersion, HMAC: want.HMAC}
	byID := make(map[string]swarm.Secret, len(versions))
	byName := make(map[string]swarm.Secret, len(versions))
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
			case swarm.UpdateUpdating, swarm.UpdatePaused, swarm.UpdateRollbackStarted, swarm.UpdateRollbackPaused:
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
	// The plan's removals are what nothing uses once its updates are in: a service it updates keeps its
	// current spec as its previous one (what `docker service rollback` returns to), and its old previous
	// spec and the tasks of it go.
	updated := make(map[string]bool, len(p.Updates))
	for _, u := range p.Updates {
		updated[u.ServiceID] = true
	}
	keep := m.Keep()
	for i, v := range ordered {
		rank := i + 1 // the wanted version is rank 0
		if rank < keep || ix.usedAfter(v, updated) {
			continue
		}
		p.Remove = append(p.Remove, v)
	}
	return p
}

// usedAfter says whether v is still used once the services in updated are updated: a current spec refers
// to it, or the previous spec or a live task of a service not updated does.
func (ix *Index) usedAfter(v Version, updated map[string]bool) bool {
	for _, k := range []string{v.ID, v.Name} {
		if k == "" {
			continue
		}
		if ix.inSpec[k] {
			return true
		}
		for svc := range ix.heldBy[k] {
			if !updated[svc] {
				return true
			}
		}
	}
	return false
}

// Newest returns the newest version of mapping name that exists (by
// creation, then Vault version): what `swarmguard secrets current` prints
// for a compose file to name.
func Newest(name string, all []swarm.Secret) (Version, bool) {
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
