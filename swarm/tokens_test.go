package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"
)

// tokFakeSwarm serves the swarm endpoints the token and autolock code uses: GET /swarm, POST
// /swarm/update (with the rotate flags and version CAS), GET /swarm/unlockkey and GET /services.
type tokFakeSwarm struct {
	mu        sync.Mutex
	sw        swarmtypes.Swarm
	key       string
	n         int
	conflicts int  // answer this many updates with "update out of sequence"
	noRotate  bool // accept rotations but change nothing (a broken engine)
	failReads int  // after each accepted update, fail this many reads of the swarm and the unlock key
	failing   int
	slowWrite time.Duration // answer an accepted update only after this long (the caller's timeout passes)
	// others is how many Raft writes to other objects (the lease's config object, every 10 s) come before
	// each update: versions are Raft indexes, so the swarm's version then jumps by more than one.
	others uint64
	// alsoManager: another writer rotates the manager token right after each update (a person's
	// docker swarm join-token --rotate manager)
	alsoManager bool
	updates     []string
	services    []swarmtypes.Service
}

func newTokFakeSwarm(t *testing.T) (*tokFakeSwarm, *Client) {
	t.Helper()
	f := &tokFakeSwarm{}
	f.sw.ID = "swarm1"
	f.sw.Version.Index = 10
	f.sw.JoinTokens = swarmtypes.JoinTokens{Worker: "SWMTKN-1-digest-w0secretpart", Manager: "SWMTKN-1-digest-m0secretpart"}
	return f, serveFake(t, f)
}

func (f *tokFakeSwarm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := apiPath(w, r)
	switch {
	case path == "/_ping":
		_, _ = w.Write([]byte("OK"))
	case r.Method == http.MethodGet && (path == "/swarm" || path == "/swarm/unlockkey") && f.failing > 0:
		f.failing--
		http.Error(w, `{"message":"context deadline exceeded"}`, http.StatusInternalServerError)
	case r.Method == http.MethodGet && path == "/swarm":
		_ = json.NewEncoder(w).Encode(f.sw)
	case r.Method == http.MethodGet && path == "/swarm/unlockkey":
		_ = json.NewEncoder(w).Encode(swarmtypes.UnlockKeyResponse{UnlockKey: f.key})
	case r.Method == http.MethodGet && path == "/services":
		_ = json.NewEncoder(w).Encode(f.services)
	case r.Method == http.MethodPost && path == "/swarm/update":
		q := r.URL.Query()
		f.updates = append(f.updates, fmt.Sprintf("version=%s worker=%s manager=%s key=%s", q.Get("version"), q.Get("rotateWorkerToken"), q.Get("rotateManagerToken"), q.Get("rotateManagerUnlockKey")))
		if f.conflicts > 0 {
			f.conflicts--
			f.sw.Version.Index++ // someone else wrote
			http.Error(w, `{"message":"rpc error: code = Unknown desc = update out of sequence"}`, http.StatusInternalServerError)
			return
		}
		if q.Get("version") != strconv.FormatUint(f.sw.Version.Index, 10) {
			http.Error(w, `{"message":"update out of sequence"}`, http.StatusInternalServerError)
			return
		}
		var spec swarmtypes.Spec
		if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.sw.Spec = spec
		f.sw.Version.Index += 1 + f.others
		f.n++
		f.failing = f.failReads
		if f.slowWrite > 0 {
			defer time.Sleep(f.slowWrite) // applied now, answered late (the fake stays busy meanwhile)
		}
		if !f.noRotate {
			if q.Get("rotateWorkerToken") == "true" {
				f.sw.JoinTokens.Worker = fmt.Sprintf("SWMTKN-1-digest-w%dsecretpart", f.n)
			}
			if q.Get("rotateManagerToken") == "true" || f.alsoManager {
				f.sw.JoinTokens.Manager = fmt.Sprintf("SWMTKN-1-digest-m%dsecretpart", f.n)
			}
			if q.Get("rotateManagerUnlockKey") == "true" && spec.EncryptionConfig.AutoLockManagers {
				f.key = fmt.Sprintf("SWMKEY-1-key%dsecretpart", f.n)
			}
		}
		switch {
		case !spec.EncryptionConfig.AutoLockManagers:
			f.key = ""
		case f.key == "":
			f.key = fmt.Sprintf("SWMKEY-1-key%dsecretpart", f.n)
		}
	default:
		http.Error(w, `{"message":"not faked: `+r.Method+" "+path+`"}`, http.StatusNotImplemented)
	}
}

func TestRotateJoinTokens(t *testing.T) {
	cases := []struct {
		name            string
		worker, manager bool
		conflicts       int
		noRotate        bool
		wantKinds       string
		wantErr         error
		wantUpdates     int
	}{
		{name: "worker", worker: true, wantKinds: "worker", wantUpdates: 1},
		{name: "manager", manager: true, wantKinds: "manager", wantUpdates: 1},
		{name: "both", worker: true, manager: true, wantKinds: "worker,manager", wantUpdates: 1},
		{name: "nothing asked", wantKinds: "", wantUpdates: 0},
		{name: "lost CAS is retried", worker: true, conflicts: 2, wantKinds: "worker", wantUpdates: 3},
		{name: "engine did not rotate", worker: true, noRotate: true, wantErr: ErrNotRotated, wantUpdates: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newTokFakeSwarm(t)
			f.conflicts, f.noRotate = tc.conflicts, tc.noRotate
			w0, m0 := f.sw.JoinTokens.Worker, f.sw.JoinTokens.Manager
			rots, err := c.RotateJoinTokens(t.Context(), tc.worker, tc.manager)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("RotateJoinTokens() = %v; want %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secretpart") {
				t.Errorf("error holds a token")
			}
			if len(f.updates) != tc.wantUpdates {
				t.Errorf("updates = %v; want %d", f.updates, tc.wantUpdates)
			}
			if tc.wantErr != nil {
				return
			}
			var kinds []string
			for _, r := range rots {
				kinds = append(kinds, r.Kind)
				old, cur := w0, f.sw.JoinTokens.Worker
				if r.Kind == TokenManager {
					old, cur = m0, f.sw.JoinTokens.Manager
				}
				if r.Old.Reveal() != old || r.New.Reveal() != cur || r.SwarmID != "swarm1" {
					t.Errorf("%s rotation: old/new are not the engine's tokens before and after", r.Kind)
				}
			}
			if got := strings.Join(kinds, ","); got != tc.wantKinds {
				t.Errorf("rotated kinds = %q; want %q", got, tc.wantKinds)
			}
			if !tc.manager && f.sw.JoinTokens.Manager != m0 {
				t.Errorf("manager token changed when only the worker token was asked")
			}
			if !tc.worker && f.sw.JoinTokens.Worker != w0 {
				t.Errorf("worker token changed when only the manager token was asked")
			}
		})
	}
}

// TestRotationReadBackRetried: a rotation the engine accepted is read back again when the first read fails
// (a holder paused past its call timeout), so its record carries the new token; reads that keep failing say
// that the rotation itself was accepted.
func TestRotationReadBackRetried(t *testing.T) {
	f, c := newTokFakeSwarm(t)
	f.failReads = readBackAttempts - 1
	rots, err := c.RotateJoinTokens(t.Context(), true, false)
	if err != nil || len(rots) != 1 || rots[0].New.Reveal() != "SWMTKN-1-digest-w1secretpart" {
		t.Fatalf("RotateJoinTokens after %d failed reads = %v, %v; want the new worker token", readBackAttempts-1, rots, err)
	}
	f.mu.Lock()
	f.failReads = readBackAttempts
	f.mu.Unlock()
	if _, err := c.RotateJoinTokens(t.Context(), true, false); err == nil || !strings.Contains(err.Error(), "the rotation itself was accepted") {
		t.Fatalf("RotateJoinTokens with every read failing = %v; want an error saying the rotation was accepted", err)
	}
}

// TestRotationAnswerLost: an update applied by the engine whose answer the caller never got (its call timed
// out) is found by reading the swarm back: exactly one version on and the token changed, so the rotation is
// returned and can be recorded as done; without the change, the timeout stands.
func TestRotationAnswerLost(t *testing.T) {
	f, c := newTokFakeSwarm(t)
	c.timeout = 200 * time.Millisecond
	f.slowWrite = 400 * time.Millisecond
	rots, err := c.RotateJoinTokens(t.Context(), true, false)
	if err != nil || len(rots) != 1 || rots[0].New.Reveal() != "SWMTKN-1-digest-w1secretpart" || rots[0].Old.Reveal() != "SWMTKN-1-digest-w0secretpart" {
		t.Fatalf("RotateJoinTokens with the answer lost = %v, %v; want the rotation read back", rots, err)
	}
	f.mu.Lock()
	f.noRotate = true
	f.mu.Unlock()
	if _, err := c.RotateJoinTokens(t.Context(), true, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RotateJoinTokens with the answer lost and nothing rotated = %v; want the timeout", err)
	}
}

// TestRotationAnswerLostOnABusySwarm: versions are Raft indexes, shared by every object of the store; with
// the lease written every 10 s (and tasks, nodes...) the swarm's version after the lost-answer write is
// several indexes on, never exactly one. The rotation is still this caller's: it is returned, not a failure
// the next pass adopts. A change to a token it did not ask for is not its write: the timeout stands.
func TestRotationAnswerLostOnABusySwarm(t *testing.T) {
	f, c := newTokFakeSwarm(t)
	c.timeout = 200 * time.Millisecond
	f.slowWrite = 400 * time.Millisecond
	f.others = 3
	rots, err := c.RotateJoinTokens(t.Context(), true, false)
	if err != nil || len(rots) != 1 || rots[0].New.Reveal() != "SWMTKN-1-digest-w1secretpart" {
		t.Fatalf("RotateJoinTokens with the answer lost on a busy swarm = %v, %v; want the rotation read back", rots, err)
	}
	f.mu.Lock()
	f.alsoManager = true
	f.mu.Unlock()
	if _, err := c.RotateJoinTokens(t.Context(), true, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RotateJoinTokens with the answer lost and the manager token changed too = %v; want the timeout", err)
	}
}
