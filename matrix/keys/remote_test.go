package keys

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/store"
)

// Two real keys services, one per server name, connected in-process: peers answers the
// federation requests of one with the other's federation read side (FedUserDevices,
// FedQuery, FedClaim), which is what the HTTP layer in between does. The HTTP path itself is
// covered by matrix/federation's e2ee_integration_test.go.

const otherServer = "other.test"

type peers struct {
	mu      gosync.Mutex
	servers map[string]*Service
	calls   map[string]int // "devices", "query", "claim"
}

func (p *peers) get(kind, server string) (*Service, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[kind]++
	s, ok := p.servers[server]
	if !ok {
		return nil, fmt.Errorf("connect %s: connection refused", server)
	}
	return s, nil
}

func (p *peers) count(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[kind]
}

func (p *peers) UserDevices(ctx context.Context, server, user string) (*FedDevices, error) {
	s, err := p.get("devices", server)
	if err != nil {
		return nil, err
	}
	return s.FedUserDevices(ctx, id.UserID(user))
}

func (p *peers) QueryKeys(ctx context.Context, server string, users map[string][]string) (*FedQueryResponse, error) {
	s, err := p.get("query", server)
	if err != nil {
		return nil, err
	}
	return s.FedQuery(ctx, users)
}

func (p *peers) ClaimKeys(ctx context.Context, server string, req map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
	s, err := p.get("claim", server)
	if err != nil {
		return nil, err
	}
	return s.FedClaim(ctx, req)
}

func newServiceNamed(t *testing.T, name string) *Service {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := New(st, name, nil)
	t.Cleanup(s.Close)
	return s
}

// remotePair is a local service that asks a second one, on otherServer, for its users' keys.
// Tests that expect caching first make a local user share a room with the remote one
// (sharedWithBob): only those users' lists are cached (remote_track.go).
func remotePair(t *testing.T) (local, remote *Service, p *peers) {
	t.Helper()
	local, remote = newService(t), newServiceNamed(t, otherServer)
	p = &peers{servers: map[string]*Service{otherServer: remote}, calls: map[string]int{}}
	local.EnableRemote(RemoteOptions{Federation: p, Timeout: 5 * time.Second})
	return local, remote, p
}

// sharedWithBob puts @alice (local) and @bob of otherServer in one room on s.
func sharedWithBob(t *testing.T, s *Service) {
	t.Helper()
	room, _ := setMember(t, s, 0, "@alice:"+server, "join")
	setMember(t, s, room, "@bob:"+otherServer, "join")
}

// uploadDevice creates a device of user on s with signed device keys.
func uploadDevice(t *testing.T, s *Service, user id.UserID, dev string) {
	t.Helper()
	addDevice(t, s, user, dev)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	dk := signed(deviceKeyObject(user, dev, pub), user, dev, priv)
	if _, err := s.Upload(context.Background(), user, dev, &UploadRequest{DeviceKeys: raw(dk)}); err != nil {
		t.Fatalf("upload keys of %s: %v", dev, err)
	}
}

func queriedDevices(t *testing.T, s *Service, user id.UserID) ([]string, *QueryResponse) {
	t.Helper()
	r, err := s.Query(context.Background(), "@alice:"+server, map[string][]string{user.String(): {}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for d := range r.DeviceKeys[user.String()] {
		out = append(out, d)
	}
	slices.Sort(out)
	return out, r
}

// eventually polls cond for up to 5 s (the resync runs in the background).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRemoteQueryCachesAndReportsFailures(t *testing.T) {
	local, remote, p := remotePair(t)
	sharedWithBob(t, local)
	ctx := context.Background()
	bob := id.UserID("@bob:" + otherServer)
	uploadDevice(t, remote, bob, "B1")

	r, err := local.Query(ctx, "@alice:"+server, map[string][]string{bob.String(): {}, "@ghost:down.test": {}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.DeviceKeys[bob.String()]["B1"]; !ok {
		t.Fatalf("bob's device missing: %v", r.DeviceKeys)
	}
	if _, ok := r.Failures["down.test"]; !ok || len(r.Failures) != 1 {
		t.Fatalf("failures %v, want down.test only", r.Failures)
	}
	// The whole list is cached: a second query, and one naming the device, stay local.
	if devs, _ := queriedDevices(t, local, bob); !slices.Equal(devs, []string{"B1"}) {
		t.Fatalf("cached devices %v", devs)
	}
	r, err = local.Query(ctx, "@alice:"+server, map[string][]string{bob.String(): {"B1", "NOPE"}})
	if err != nil || len(r.DeviceKeys[bob.String()]) != 1 {
		t.Fatalf("named query: %v %v", r.DeviceKeys, err)
	}
	if n := p.count("query"); n != 2 { // one to other.test, one to down.test
		t.Fatalf("%d key queries were sent, want 2", n)
	}
	// A remote server's answer about a user it was not asked for, or of another server, is
	// not taken: FedQuery only answers for its own users, so ask about a user of ours there.
	r, err = local.Query(ctx, "@alice:"+server, map[string][]string{"@carol:" + otherServer: {}})
	if err != nil || len(r.DeviceKeys["@carol:"+otherServer]) != 0 || len(r.Failures) != 0 {
		t.Fatalf("unknown remote user: %v %v %v", r.DeviceKeys, r.Failures, err)
	}
}

func TestRemoteDeviceListUpdates(t *testing.T) {
	local, remote, p := remotePair(t)
	sharedWithBob(t, local)
	ctx := context.Background()
	bob := id.UserID("@bob:" + otherServer)
	uploadDevice(t, remote, bob, "B1")
	queriedDevices(t, local, bob) // cached from a key query: no stream ID yet

	// An update that cannot be chained onto the cache makes it stale: the next query asks
	// again, and the whole list is fetched in the background.
	uploadDevice(t, remote, bob, "B2")
	upd := func(dev string, streamID int64, prev []int64, deleted bool) RemoteDeviceUpdate {
		var keys json.RawMessage
		if !deleted {
			r, err := remote.FedQuery(ctx, map[string][]string{bob.String(): {dev}})
			if err != nil {
				t.Fatal(err)
			}
			keys = r.DeviceKeys[bob.String()][dev]
		}
		return RemoteDeviceUpdate{UserID: bob.String(), DeviceID: dev, StreamID: streamID, PrevID: prev, Deleted: deleted, Keys: keys, DisplayName: "phone"}
	}
	if err := local.ApplyDeviceListUpdate(ctx, upd("B2", 1, nil, false)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a resync", func() bool { return p.count("devices") == 1 })
	eventually(t, "both devices", func() bool {
		devs, _ := queriedDevices(t, local, bob)
		return slices.Equal(devs, []string{"B1", "B2"})
	})

	// The other server announces its updates with IDs from its own counter; after a resync
	// that gives the counter's value, the next update is applied in place, with no request.
	var prev, next uint64
	err := remote.st.Update(func(txn *store.Txn) error {
		var err error
		prev, next, err = txn.NextFedDeviceListID(bob.String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := local.ApplyDeviceListUpdate(ctx, upd("B2", int64(next), []int64{int64(prev)}, false)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a second resync", func() bool { return p.count("devices") == 2 })
	eventually(t, "the cache to be fresh", func() bool { return local.remote.cached(bob.String()) != nil })
	queries := p.count("query")
	if err := local.ApplyDeviceListUpdate(ctx, upd("B1", int64(next)+1, []int64{int64(next)}, true)); err != nil {
		t.Fatal(err)
	}
	devs, r := queriedDevices(t, local, bob)
	if !slices.Equal(devs, []string{"B2"}) {
		t.Fatalf("after the deletion: %v", devs)
	}
	var unsigned struct {
		Unsigned struct {
			Name string `json:"device_display_name"`
		} `json:"unsigned"`
	}
	_ = json.Unmarshal(r.DeviceKeys[bob.String()]["B2"], &unsigned)
	if unsigned.Unsigned.Name != "dev B2" {
		t.Fatalf("display name %q", unsigned.Unsigned.Name)
	}
	if p.count("devices") != 2 || p.count("query") != queries {
		t.Fatalf("an in-place update went to the other server: devices %d, queries %d->%d", p.count("devices"), queries, p.count("query"))
	}

	// A signing key update shows in the next answer.
	master := raw(csKeyObject(bob, UsageMaster, make([]byte, ed25519.PublicKeySize)))
	if err := local.ApplySigningKeyUpdate(ctx, RemoteSigningKeyUpdate{UserID: bob.String(), MasterKey: master}); err != nil {
		t.Fatal(err)
	}
	if _, r := queriedDevices(t, local, bob); string(r.MasterKeys[bob.String()]) != string(master) {
		t.Fatalf("master key %s", r.MasterKeys[bob.String()])
	}

	// Malformed updates are refused with a 4xx error.
	if err := local.ApplyDeviceListUpdate(ctx, RemoteDeviceUpdate{UserID: bob.String(), StreamID: 9}); errCode(err) != "M_INVALID_PARAM" {
		t.Fatalf("update without a device: %v", err)
	}
}

func TestRemoteClaim(t *testing.T) {
	local, remote, p := remotePair(t)
	ctx := context.Background()
	bob := id.UserID("@bob:" + otherServer)
	uploadDevice(t, remote, bob, "B1")
	if _, err := remote.Upload(ctx, bob, "B1", &UploadRequest{OneTimeKeys: map[string]json.RawMessage{
		"signed_curve25519:K1": raw(map[string]any{"key": "otk-1"}),
	}}); err != nil {
		t.Fatal(err)
	}
	req := map[string]map[string]string{bob.String(): {"B1": AlgSignedCurve25519}, "@ghost:down.test": {"G": AlgSignedCurve25519}}
	r, err := local.Claim(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if k := r.OneTimeKeys[bob.String()]["B1"]["signed_curve25519:K1"]; string(k) != `{"key":"otk-1"}` {
		t.Fatalf("claimed %v", r.OneTimeKeys)
	}
	if _, ok := r.Failures["down.test"]; !ok {
		t.Fatalf("failures %v", r.Failures)
	}
	// The key is gone from the other server: a second claim gets nothing.
	r, err = local.Claim(ctx, map[string]map[string]string{bob.String(): {"B1": AlgSignedCurve25519}})
	if err != nil || len(r.OneTimeKeys) != 0 {
		t.Fatalf("second claim: %v %v", r.OneTimeKeys, err)
	}
	if p.count("claim") != 3 {
		t.Fatalf("%d claims sent, want 3", p.count("claim"))
	}
}
