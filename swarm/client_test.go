package swarm

import (
	"errors"
	"strings"
	"testing"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name    string
		swarm   swarmtypes.Info
		wantErr error
		hint    string
	}{
		{"manager", swarmtypes.Info{NodeID: "n1", LocalNodeState: "active", ControlAvailable: true}, nil, ""},
		{"worker", swarmtypes.Info{NodeID: "n2", LocalNodeState: "active"}, ErrNotManager, "run swarmguard against a manager"},
		{"not in swarm", swarmtypes.Info{LocalNodeState: "inactive"}, ErrNotInSwarm, "docker swarm init"},
		{"locked", swarmtypes.Info{LocalNodeState: "locked"}, ErrLocked, "docker swarm unlock"},
		{"pending", swarmtypes.Info{LocalNodeState: "pending"}, ErrNotInSwarm, "pending"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newFakeEngine(t)
			f.info.Swarm = tc.swarm
			self, err := c.Check(t.Context())
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Check() = %v; want %v", err, tc.wantErr)
			}
			var ce *ConnectError
			if tc.wantErr != nil && (!errors.As(err, &ce) || !strings.Contains(err.Error(), tc.hint)) {
				t.Errorf("Check() error %q; want a ConnectError with hint %q", err, tc.hint)
			}
			if tc.wantErr == nil && (self.Role != "manager" || self.NodeID != "n1") {
				t.Errorf("Check() self = %+v; want manager n1", self)
			}
		})
	}
}

func TestCheckUnreachable(t *testing.T) {
	c, err := New(Options{Host: "unix:///nonexistent/docker.sock", APITimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Check(t.Context())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "is the docker daemon running") {
		t.Fatalf("Check() = %v; want ErrUnreachable with a hint", err)
	}
}

func TestConfigObjectCAS(t *testing.T) {
	f, c := newFakeEngine(t)
	ctx := t.Context()
	if _, err := c.ConfigByName(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ConfigByName(missing) = %v; want ErrNotFound", err)
	}
	obj, err := c.CreateConfig(ctx, "x", map[string]string{"a": "1"}, "body")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateConfig(ctx, "x", nil, "body"); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("CreateConfig(dup) = %v; want ErrAlreadyExists", err)
	}
	if err := c.UpdateConfigLabels(ctx, obj, map[string]string{"a": "2"}); err != nil {
		t.Fatal(err)
	}
	// obj still carries the old version: the write must lose.
	if err := c.UpdateConfigLabels(ctx, obj, map[string]string{"a": "3"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("UpdateConfigLabels(stale) = %v; want ErrConflict", err)
	}
	got, _ := c.ConfigByName(ctx, "x")
	if got.Labels["a"] != "2" {
		t.Errorf("labels = %v; want a=2", got.Labels)
	}
	_ = f
}
