package clientapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// MSC3391: account data deleted by DELETE or by PUT of {} reads as absent, reaches an
// incremental sync as {} and is left out of an initial sync. MSC3890: a device's local
// notification settings go with the device.
func TestDeleteAccountData(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	tok := alice.AccessToken
	room := cs3CreateRoom(t, s, alice, map[string]any{})
	user := "/_matrix/client/v3/user/" + cs3Esc(alice.UserID.String())
	unstable := "/_matrix/client/unstable/org.matrix.msc3391/user/" + cs3Esc(alice.UserID.String())
	roomPart := "/rooms/" + cs3Esc(room.String())

	// adEvents returns the content of typ in a sync's global (room "") or room account data.
	adContent := func(sync map[string]any, roomID, typ string) (any, bool) {
		var evs []any
		if roomID == "" {
			evs, _ = rxDig(sync, "account_data", "events").([]any)
		} else {
			evs, _ = rxDig(sync, "rooms", "join", roomID, "account_data", "events").([]any)
		}
		for _, e := range evs {
			if rxDig(e, "type") == typ {
				return rxDig(e, "content"), true
			}
		}
		return nil, false
	}
	for _, tc := range []struct{ name, scope, roomID string }{
		{"global", "", ""}, {"room", roomPart, room.String()},
	} {
		for _, viaDelete := range []bool{true, false} {
			path := user + tc.scope + "/account_data/org.example.test"
			cs3Do(t, s, http.MethodPut, path, tok, map[string]any{"n": 1}).ok(t)
			if got := cs3Do(t, s, http.MethodGet, path, tok, nil).ok(t); got["n"] != float64(1) {
				t.Fatalf("%s: get %v", tc.name, got)
			}
			since, _ := rxSync(t, s, alice, url.Values{})["next_batch"].(string)
			if viaDelete {
				cs3Do(t, s, http.MethodDelete, unstable+tc.scope+"/account_data/org.example.test", tok, nil).ok(t)
			} else {
				cs3Do(t, s, http.MethodPut, path, tok, map[string]any{}).ok(t)
			}
			cs3Do(t, s, http.MethodGet, path, tok, nil).want(t, 404, "M_NOT_FOUND")
			inc := rxSync(t, s, alice, url.Values{"since": {since}})
			if c, ok := adContent(inc, tc.roomID, "org.example.test"); !ok || len(c.(map[string]any)) != 0 {
				t.Fatalf("%s delete=%v: incremental sync has %v %v, want {}", tc.name, viaDelete, c, ok)
			}
			if c, ok := adContent(rxSync(t, s, alice, url.Values{}), tc.roomID, "org.example.test"); ok {
				t.Fatalf("%s delete=%v: initial sync still lists %v", tc.name, viaDelete, c)
			}
		}
	}
	// Deleting server-managed types is refused; deleting an absent item is fine.
	cs3Do(t, s, http.MethodDelete, unstable+"/account_data/m.push_rules", tok, nil).want(t, 400, "M_BAD_JSON")
	cs3Do(t, s, http.MethodDelete, unstable+"/account_data/org.example.never", tok, nil).ok(t)

	// MSC3890: a second device's settings disappear when it logs out.
	login := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "password-alice"}).ok(t)
	dev2, tok2 := login["device_id"].(string), login["access_token"].(string)
	settings := user + "/account_data/org.matrix.msc3890.local_notification_settings." + dev2
	cs3Do(t, s, http.MethodPut, settings, tok, map[string]any{"is_silenced": true}).ok(t)
	cs3Do(t, s, http.MethodGet, settings, tok, nil).ok(t)
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/logout", tok2, map[string]any{}).ok(t)
	cs3Do(t, s, http.MethodGet, settings, tok, nil).want(t, 404, "M_NOT_FOUND")
}
