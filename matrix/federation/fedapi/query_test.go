package fedapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/hearth-home/hearth/matrix/keys"
	"github.com/hearth-home/hearth/matrix/rooms"
)

func TestQueryProfile(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	e.user(t, "nobody")
	dn := "Alice"
	if err := e.accounts.SetProfile(bg, alice, &dn, nil); err != nil {
		t.Fatal(err)
	}
	base := "/v1/query/profile?user_id="
	if m := e.get(t, "remote.test", base+q(alice.String())).ok(t); m["displayname"] != "Alice" || len(m) != 1 {
		t.Errorf("full profile %v", m)
	}
	if m := e.get(t, "remote.test", base+q(alice.String())+"&field=displayname").ok(t); m["displayname"] != "Alice" || len(m) != 1 {
		t.Errorf("displayname field %v", m)
	}
	if m := e.get(t, "remote.test", base+q("@nobody:hearth.test")).ok(t); len(m) != 0 {
		t.Errorf("empty profile %v", m)
	}
	e.get(t, "remote.test", base+q(alice.String())+"&field=avatar_url").fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", base+q("@ghost:hearth.test")).fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", base+q("@bob:remote.test")).fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", base+q("not a user")).fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", "/v1/query/profile").fail(t, http.StatusBadRequest, "M_MISSING_PARAM")
}

func TestQueryDirectory(t *testing.T) {
	e := newEnv(t)
	r := newSharedRoom(t, e) // alias #shared:hearth.test, bob of remote.test joined
	m := e.get(t, "remote.test", "/v1/query/directory?room_alias="+q("#shared:hearth.test")).ok(t)
	if m["room_id"] != r.id.String() {
		t.Errorf("room_id %v, want %s", m["room_id"], r.id)
	}
	if s := strs(t, m["servers"]); len(s) != 2 || s[0] != ourServer || s[1] != "remote.test" {
		t.Errorf("servers %v, want [hearth.test remote.test]", s)
	}
	e.get(t, "remote.test", "/v1/query/directory?room_alias="+q("#nope:hearth.test")).fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", "/v1/query/directory?room_alias="+q("#shared:elsewhere.test")).fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", "/v1/query/directory?room_alias=shared").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", "/v1/query/directory").fail(t, http.StatusBadRequest, "M_MISSING_PARAM")
}

func TestUserDevicesAndKeys(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	_, dev, err := e.accounts.Login(bg, "alice", "PHONE", "Alice's phone")
	if err != nil {
		t.Fatal(err)
	}
	dk, _ := json.Marshal(map[string]any{"user_id": alice, "device_id": dev, "algorithms": []string{"m.olm.v1.curve25519-aes-sha2"},
		"keys": map[string]string{"curve25519:" + dev: "curvekey", "ed25519:" + dev: "edkey"}, "signatures": map[string]any{}})
	otk := json.RawMessage(`{"key":"otk1","signatures":{}}`)
	if _, err := e.keys.Upload(bg, alice, dev, &keys.UploadRequest{DeviceKeys: dk, OneTimeKeys: map[string]json.RawMessage{"signed_curve25519:AAAA": otk}}); err != nil {
		t.Fatalf("upload keys: %v", err)
	}

	m := e.get(t, "remote.test", "/v1/user/devices/"+esc(alice.String())).ok(t)
	if m["user_id"] != alice.String() {
		t.Errorf("user_id %v", m["user_id"])
	}
	if sid, _ := m["stream_id"].(float64); sid <= 0 {
		t.Errorf("stream_id %v, want a position after the key upload", m["stream_id"])
	}
	devs, _ := m["devices"].([]any)
	if len(devs) != 1 {
		t.Fatalf("devices %v", m["devices"])
	}
	d := devs[0].(map[string]any)
	k, _ := d["keys"].(map[string]any)
	if d["device_id"] != dev || d["device_display_name"] != "Alice's phone" || k["device_id"] != dev || k["unsigned"] != nil {
		t.Errorf("device %v", d)
	}
	e.get(t, "remote.test", "/v1/user/devices/"+esc("@ghost:hearth.test")).fail(t, http.StatusNotFound, "M_NOT_FOUND")
	e.get(t, "remote.test", "/v1/user/devices/"+esc("@bob:remote.test")).fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", "/v1/user/devices/nope").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")

	qm := e.do(t, "remote.test", http.MethodPost, "/v1/user/keys/query", map[string]any{"device_keys": map[string]any{alice.String(): []string{}, "@bob:remote.test": []string{}}}).ok(t)
	dkeys, _ := qm["device_keys"].(map[string]any)
	if ad, _ := dkeys[alice.String()].(map[string]any); ad[dev] == nil {
		t.Errorf("key query lacks alice's device: %v", qm)
	}
	if _, ok := dkeys["@bob:remote.test"]; ok {
		t.Errorf("key query answers for a remote user: %v", qm)
	}
	if _, ok := qm["user_signing_keys"]; ok {
		t.Errorf("key query shows user-signing keys to another server: %v", qm)
	}
	e.do(t, "remote.test", http.MethodPost, "/v1/user/keys/query", map[string]any{}).fail(t, http.StatusBadRequest, "M_BAD_JSON")
	e.do(t, "remote.test", http.MethodPost, "/v1/user/keys/query", map[string]any{"device_keys": []string{}}).fail(t, http.StatusBadRequest, "M_BAD_JSON")
	e.do(t, "remote.test", http.MethodPost, "/v1/user/keys/query", "nope").fail(t, http.StatusBadRequest, "M_NOT_JSON")

	claim := map[string]any{"one_time_keys": map[string]any{alice.String(): map[string]string{dev: "signed_curve25519"}}}
	cm := e.do(t, "remote.test", http.MethodPost, "/v1/user/keys/claim", claim).ok(t)
	got, _ := cm["one_time_keys"].(map[string]any)[alice.String()].(map[string]any)[dev].(map[string]any)
	if k, _ := got["signed_curve25519:AAAA"].(map[string]any); k["key"] != "otk1" {
		t.Errorf("claimed %v", cm)
	}
	// The key is handed out once.
	if cm = e.do(t, "remote.test", http.MethodPost, "/v1/user/keys/claim", claim).ok(t); len(cm["one_time_keys"].(map[string]any)) != 0 {
		t.Errorf("second claim %v", cm)
	}
	e.do(t, "remote.test", http.MethodPost, "/v1/user/keys/claim", map[string]any{}).fail(t, http.StatusBadRequest, "M_BAD_JSON")
}

func TestPublicRooms(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	pub := e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "public_chat", Visibility: "public", Name: sp("Garden")})
	e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "public_chat", Visibility: "public", Name: sp("Kitchen")})
	e.createRoom(t, rooms.CreateRequest{Creator: alice, Preset: "public_chat", Name: sp("Unlisted")})

	m := e.get(t, "remote.test", "/v1/publicRooms").ok(t)
	if n := len(m["chunk"].([]any)); n != 2 || m["total_room_count_estimate"] != float64(2) {
		t.Errorf("directory %v: want the two published rooms", m)
	}
	p1 := e.get(t, "remote.test", "/v1/publicRooms?limit=1").ok(t)
	nb, _ := p1["next_batch"].(string)
	if len(p1["chunk"].([]any)) != 1 || nb == "" {
		t.Fatalf("first page %v", p1)
	}
	p2 := e.get(t, "remote.test", "/v1/publicRooms?limit=1&since="+q(nb)).ok(t)
	if len(p2["chunk"].([]any)) != 1 || p2["prev_batch"] == nil || p2["chunk"].([]any)[0].(map[string]any)["room_id"] == p1["chunk"].([]any)[0].(map[string]any)["room_id"] {
		t.Errorf("second page %v", p2)
	}
	f := e.do(t, "remote.test", http.MethodPost, "/v1/publicRooms", map[string]any{"filter": map[string]any{"generic_search_term": "gard"}}).ok(t)
	if c := f["chunk"].([]any); len(c) != 1 || c[0].(map[string]any)["room_id"] != pub.String() {
		t.Errorf("filtered %v", f)
	}
	e.get(t, "remote.test", "/v1/publicRooms?limit=x").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.get(t, "remote.test", "/v1/publicRooms?since=bogus").fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.do(t, "remote.test", http.MethodPost, "/v1/publicRooms", map[string]any{"limit": -1}).fail(t, http.StatusBadRequest, "M_INVALID_PARAM")
	e.do(t, "remote.test", http.MethodPost, "/v1/publicRooms", map[string]any{"filter": map[string]any{"room_types": []any{1}}}).fail(t, http.StatusBadRequest, "M_BAD_JSON")
	e.do(t, "remote.test", http.MethodPost, "/v1/publicRooms", "[").fail(t, http.StatusBadRequest, "M_NOT_JSON")
}

func TestOpenIDUserInfo(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	tok, _, err := e.accounts.CreateOpenIDToken(bg, alice)
	if err != nil {
		t.Fatal(err)
	}
	// Unauthenticated by design: no origin header.
	if m := e.get(t, "", "/v1/openid/userinfo?access_token="+q(tok)).ok(t); m["sub"] != alice.String() {
		t.Errorf("userinfo %v", m)
	}
	e.get(t, "", "/v1/openid/userinfo?access_token=wrong").fail(t, http.StatusUnauthorized, "M_UNKNOWN_TOKEN")
	e.get(t, "", "/v1/openid/userinfo").fail(t, http.StatusUnauthorized, "M_MISSING_TOKEN")
}
