package swarm

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	swarmtypes "github.com/moby/moby/api/types/swarm"
)

func TestSetAutolock(t *testing.T) {
	cases := []struct {
		name        string
		initial, on bool
		wantChanged bool
		wantUpdates int
	}{
		{name: "turn on", initial: false, on: true, wantChanged: true, wantUpdates: 1},
		{name: "already on", initial: true, on: true, wantChanged: false, wantUpdates: 0},
		{name: "turn off", initial: true, on: false, wantChanged: true, wantUpdates: 1},
		{name: "already off", initial: false, on: false, wantChanged: false, wantUpdates: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newTokFakeSwarm(t)
			f.sw.Spec.EncryptionConfig.AutoLockManagers = tc.initial
			changed, err := c.SetAutolock(t.Context(), tc.on)
			if err != nil || changed != tc.wantChanged {
				t.Fatalf("SetAutolock(%v) = %v, %v; want %v, nil", tc.on, changed, err, tc.wantChanged)
			}
			if len(f.updates) != tc.wantUpdates || f.sw.Spec.EncryptionConfig.AutoLockManagers != tc.on {
				t.Errorf("updates %v, autolock %v; want %d updates, autolock %v", f.updates, f.sw.Spec.EncryptionConfig.AutoLockManagers, tc.wantUpdates, tc.on)
			}
		})
	}
}

func TestRotateUnlockKey(t *testing.T) {
	cases := []struct {
		name     string
		autolock bool
		noRotate bool
		wantErr  error
	}{
		{name: "rotates", autolock: true},
		{name: "autolock off", autolock: false, wantErr: ErrAutolockOff},
		{name: "engine did not rotate", autolock: true, noRotate: true, wantErr: ErrNotRotated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newTokFakeSwarm(t)
			if tc.autolock {
				f.sw.Spec.EncryptionConfig.AutoLockManagers = true
				f.key = "SWMKEY-1-key0secretpart"
			}
			f.noRotate = tc.noRotate
			old, cur, err := c.RotateUnlockKey(t.Context())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("RotateUnlockKey() = %v; want %v", err, tc.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "secretpart") {
					t.Errorf("error holds the key")
				}
				if tc.wantErr == ErrAutolockOff && len(f.updates) != 0 {
					t.Errorf("updates = %v; want none when autolock is off", f.updates)
				}
				return
			}
			if old.Reveal() != "SWMKEY-1-key0secretpart" || cur.Reveal() != f.key || cur.Reveal() == old.Reveal() {
				t.Errorf("RotateUnlockKey() did not return the engine's old and new keys")
			}
			if len(f.updates) != 1 || !strings.HasSuffix(f.updates[0], "key=true") {
				t.Errorf("updates = %v; want one with rotateManagerUnlockKey", f.updates)
			}
			got, err := c.UnlockKey(t.Context())
			if err != nil || got.Reveal() != f.key {
				t.Errorf("UnlockKey() = %v; want the current key", err)
			}
		})
	}
}

func TestServiceEndpoints(t *testing.T) {
	f, c := newTokFakeSwarm(t)
	f.services = []swarmtypes.Service{{
		ID: "s1",
		Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "ops_vault", Labels: map[string]string{"com.docker.stack.namespace": "ops"}},
			TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "hashicorp/vault:1.21"}}},
		Endpoint: swarmtypes.Endpoint{
			Ports:      []swarmtypes.PortConfig{{TargetPort: 8200, PublishedPort: 8200}, {TargetPort: 9000}},
			VirtualIPs: []swarmtypes.EndpointVirtualIP{{NetworkID: "n", Addr: netip.MustParsePrefix("10.0.1.5/24")}},
		},
	}}
	got, err := c.ServiceEndpoints(t.Context())
	if err != nil || len(got) != 1 {
		t.Fatalf("ServiceEndpoints() = %v, %v; want one", got, err)
	}
	e := got[0]
	if e.Name != "ops_vault" || e.Stack != "ops" || e.Image != "hashicorp/vault:1.21" || len(e.PublishedPorts) != 1 || e.PublishedPorts[0] != 8200 ||
		len(e.VirtualIPs) != 1 || e.VirtualIPs[0] != "10.0.1.5" {
		t.Errorf("ServiceEndpoints() = %+v; want ops_vault, port 8200, VIP 10.0.1.5", e)
	}
}
