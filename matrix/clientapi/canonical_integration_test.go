package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Content with no canonical JSON form (an integer beyond 2^53) cannot be signed: the client
// gets 400 M_BAD_JSON, never a 500.
func TestContentBeyondCanonicalJSON(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	room := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat"})
	base := "/_matrix/client/v3/rooms/" + cs3Esc(room.String())
	for _, path := range []string{base + "/state/m.room.power_levels/", base + "/send/m.room.message/big1"} {
		body := `{"users":{"@bob:x":9007199254740992}}`
		if path != base+"/state/m.room.power_levels/" {
			body = `{"msgtype":"m.text","body":"x","n":9007199254740992}`
		}
		st, resp := s.Raw(t, http.MethodPut, path, alice.AccessToken, body)
		if st != 400 || resp["errcode"] != "M_BAD_JSON" {
			t.Errorf("%s: %d %v, want 400 M_BAD_JSON", path, st, resp)
		}
	}
}
