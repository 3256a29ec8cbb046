package keysync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// These tests drive the E2EE sync sections and endpoints over HTTP against a real appliance.

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// syncResp is the part of /sync these tests read.
type syncResp struct {
	NextBatch string `json:"next_batch"`
	ToDevice  struct {
		Events []struct {
			Sender  string         `json:"sender"`
			Type    string         `json:"type"`
			Content map[string]any `json:"content"`
		} `json:"events"`
	} `json:"to_device"`
	DeviceLists struct {
		Changed []string `json:"changed"`
		Left    []string `json:"left"`
	} `json:"device_lists"`
	OTKCount     map[string]int `json:"device_one_time_keys_count"`
	FallbackKeys *[]string      `json:"device_unused_fallback_key_types"`
}

func do(t *testing.T, srv *testserver.Server, cli *mautrix.Client, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequestWithContext(ctx(t), method, srv.URL+path, r)
	req.Header.Set("Authorization", "Bearer "+cli.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func mustDo(t *testing.T, srv *testserver.Server, cli *mautrix.Client, method, path string, body, out any) {
	t.Helper()
	status, b := do(t, srv, cli, method, path, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func sync(t *testing.T, srv *testserver.Server, cli *mautrix.Client, since string, timeoutMS int) syncResp {
	t.Helper()
	q := url.Values{"timeout": {fmt.Sprint(timeoutMS)}}
	if since != "" {
		q.Set("since", since)
	}
	var r syncResp
	mustDo(t, srv, cli, http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), nil, &r)
	return r
}

func uploadDeviceKeys(t *testing.T, srv *testserver.Server, cli *mautrix.Client, seed string) {
	t.Helper()
	dev := cli.DeviceID.String()
	mustDo(t, srv, cli, http.MethodPost, "/_matrix/client/v3/keys/upload", map[string]any{
		"device_keys": map[string]any{
			"user_id": cli.UserID, "device_id": dev,
			"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
			"keys":       map[string]string{"ed25519:" + dev: "ed-" + seed, "curve25519:" + dev: "cu-" + seed},
			"signatures": map[string]any{},
		},
		"one_time_keys": map[string]any{"signed_curve25519:A" + seed: map[string]any{"key": "otk-" + seed, "signatures": map[string]any{}}},
	}, nil)
}

func TestToDeviceDeliveredUntilAcknowledged(t *testing.T) {
	srv := testserver.Start(t)
	alice := srv.Register(t, "alice", false)
	bob := srv.Register(t, "bob", false)
	s0 := sync(t, srv, bob, "", 0)
	if s0.FallbackKeys == nil || s0.OTKCount == nil {
		t.Fatalf("E2EE sections missing from an initial sync: %+v", s0)
	}

	// A long-poll is woken by a to-device message.
	done := make(chan syncResp, 1)
	go func() { done <- sync(t, srv, bob, s0.NextBatch, 10000) }()
	time.Sleep(200 * time.Millisecond)
	msg := map[string]any{"messages": map[string]any{bob.UserID.String(): map[string]any{bob.DeviceID.String(): map[string]any{"n": 1}}}}
	start := time.Now()
	for range 2 { // the retried transaction is delivered once
		mustDo(t, srv, alice, http.MethodPut, "/_matrix/client/v3/sendToDevice/m.test/txn1", msg, nil)
	}
	var s1 syncResp
	select {
	case s1 = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("long-poll not woken by a to-device message")
	}
	if time.Since(start) > 5*time.Second || len(s1.ToDevice.Events) != 1 || s1.ToDevice.Events[0].Sender != alice.UserID.String() || s1.ToDevice.Events[0].Content["n"] != float64(1) {
		t.Fatalf("to-device delivery: %+v", s1.ToDevice)
	}
	// Until a later token is presented, a retry with the old one gets the message again.
	if again := sync(t, srv, bob, s0.NextBatch, 0); len(again.ToDevice.Events) != 1 {
		t.Fatalf("retry with the old token: %+v", again.ToDevice)
	}
	// Presenting s1 acknowledges it: never delivered again, not even for the old token.
	if s2 := sync(t, srv, bob, s1.NextBatch, 0); len(s2.ToDevice.Events) != 0 {
		t.Fatalf("acknowledged message delivered again: %+v", s2.ToDevice)
	}
	if old := sync(t, srv, bob, s0.NextBatch, 0); len(old.ToDevice.Events) != 0 {
		t.Fatalf("acknowledged message still stored: %+v", old.ToDevice)
	}
	// "*" reaches every device of the user; unknown event content shapes are refused.
	mustDo(t, srv, alice, http.MethodPut, "/_matrix/client/v3/sendToDevice/m.test/txn2",
		map[string]any{"messages": map[string]any{bob.UserID.String(): map[string]any{"*": map[string]any{"n": 2}}}}, nil)
	if s3 := sync(t, srv, bob, s1.NextBatch, 0); len(s3.ToDevice.Events) != 1 || s3.ToDevice.Events[0].Content["n"] != float64(2) {
		t.Fatalf("wildcard delivery: %+v", s3.ToDevice)
	}
	status, _ := do(t, srv, alice, http.MethodPut, "/_matrix/client/v3/sendToDevice/m.test/txn3",
		map[string]any{"messages": map[string]any{bob.UserID.String(): map[string]any{"*": "not an object"}}})
	if status != http.StatusBadRequest {
		t.Fatalf("non-object content: %d", status)
	}
}

func TestDeviceListsAndKeysEndpoints(t *testing.T) {
	srv := testserver.Start(t)
	alice := srv.Register(t, "alice", false)
	bob := srv.Register(t, "bob", false)
	carol := srv.Register(t, "carol", false)
	uploadDeviceKeys(t, srv, bob, "1")

	room, err := alice.CreateRoom(ctx(t), &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	a0 := sync(t, srv, alice, "", 0)
	if _, err := bob.JoinRoomByID(ctx(t), room.RoomID); err != nil {
		t.Fatal(err)
	}
	a1 := sync(t, srv, alice, a0.NextBatch, 5000)
	if !slices.Contains(a1.DeviceLists.Changed, bob.UserID.String()) {
		t.Fatalf("bob joined a shared room: changed %v", a1.DeviceLists.Changed)
	}
	// A key change of someone sharing a room wakes the long-poll; carol shares none.
	done := make(chan syncResp, 1)
	go func() { done <- sync(t, srv, alice, a1.NextBatch, 10000) }()
	time.Sleep(200 * time.Millisecond)
	uploadDeviceKeys(t, srv, carol, "c")
	uploadDeviceKeys(t, srv, bob, "2")
	a2 := <-done
	// The wake-up may come from carol's upload first; bob's follows within the window.
	for until := time.Now().Add(5 * time.Second); time.Now().Before(until) && !slices.Contains(a2.DeviceLists.Changed, bob.UserID.String()); {
		a2 = sync(t, srv, alice, a1.NextBatch, 2000)
	}
	if !slices.Contains(a2.DeviceLists.Changed, bob.UserID.String()) || slices.Contains(a2.DeviceLists.Changed, carol.UserID.String()) {
		t.Fatalf("key change: changed %v", a2.DeviceLists.Changed)
	}
	var changes struct {
		Changed []string `json:"changed"`
		Left    []string `json:"left"`
	}
	mustDo(t, srv, alice, http.MethodGet, "/_matrix/client/v3/keys/changes?from="+a1.NextBatch+"&to="+a2.NextBatch, nil, &changes)
	if !slices.Equal(changes.Changed, []string{bob.UserID.String()}) {
		t.Fatalf("/keys/changes: %+v", changes)
	}

	// Query: bob's device with its display name; alice (no keys) is an empty object.
	var q struct {
		DeviceKeys map[string]map[string]json.RawMessage `json:"device_keys"`
	}
	mustDo(t, srv, alice, http.MethodPost, "/_matrix/client/v3/keys/query",
		map[string]any{"device_keys": map[string][]string{bob.UserID.String(): {}, alice.UserID.String(): {}}}, &q)
	if len(q.DeviceKeys[bob.UserID.String()]) != 1 || q.DeviceKeys[alice.UserID.String()] == nil || len(q.DeviceKeys[alice.UserID.String()]) != 0 {
		t.Fatalf("query: %s", mustJSON(q))
	}
	status, body := do(t, srv, alice, http.MethodPost, "/_matrix/client/v3/keys/query",
		map[string]any{"device_keys": map[string]any{bob.UserID.String(): map[string]bool{"X": true}}})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "M_BAD_JSON") {
		t.Fatalf("device list as an object: %d %s", status, body)
	}

	// Claim: the one-time keys in upload order, then nothing (no fallback key uploaded).
	claim := map[string]any{"one_time_keys": map[string]any{bob.UserID.String(): map[string]string{bob.DeviceID.String(): "signed_curve25519"}}}
	var cl struct {
		OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
	}
	for _, want := range []string{"signed_curve25519:A1", "signed_curve25519:A2", ""} {
		cl.OneTimeKeys = nil
		mustDo(t, srv, alice, http.MethodPost, "/_matrix/client/v3/keys/claim", claim, &cl)
		got := ""
		for k := range cl.OneTimeKeys[bob.UserID.String()][bob.DeviceID.String()] {
			got = k
		}
		if got != want || (want == "" && cl.OneTimeKeys[bob.UserID.String()] != nil) {
			t.Fatalf("claim: got %q, want %q (%v)", got, want, cl.OneTimeKeys)
		}
	}

	// Bob leaves: alice hears he left; a later key change of his is not announced to her.
	if _, err := bob.LeaveRoom(ctx(t), room.RoomID); err != nil {
		t.Fatal(err)
	}
	a3 := sync(t, srv, alice, a2.NextBatch, 5000)
	if !slices.Contains(a3.DeviceLists.Left, bob.UserID.String()) {
		t.Fatalf("bob left: %+v", a3.DeviceLists)
	}
	uploadDeviceKeys(t, srv, bob, "3")
	if a4 := sync(t, srv, alice, a3.NextBatch, 0); slices.Contains(a4.DeviceLists.Changed, bob.UserID.String()) {
		t.Fatalf("a user sharing no room was announced: %+v", a4.DeviceLists)
	}

	// Deleting a device removes its keys, and the owner's other devices hear of it.
	b0 := sync(t, srv, bob, "", 0)
	second, err := mautrix.NewClient(srv.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Login(ctx(t), &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Password: "password-bob", StoreCredentials: true,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "bob"}}); err != nil {
		t.Fatal(err)
	}
	uploadDeviceKeys(t, srv, second, "4")
	mustDo(t, srv, bob, http.MethodPost, "/_matrix/client/v3/logout", map[string]any{}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.DeviceKeys = nil
		mustDo(t, srv, second, http.MethodPost, "/_matrix/client/v3/keys/query",
			map[string]any{"device_keys": map[string][]string{bob.UserID.String(): {}}}, &q)
		b1 := sync(t, srv, second, b0.NextBatch, 0)
		if _, ok := q.DeviceKeys[bob.UserID.String()][bob.DeviceID.String()]; !ok && slices.Contains(b1.DeviceLists.Changed, bob.UserID.String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted device still listed or not announced: %s %+v", mustJSON(q), b1.DeviceLists)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
