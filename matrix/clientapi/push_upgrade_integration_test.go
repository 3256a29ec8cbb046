package clientapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// A room rule (say, a muted room) follows the room through an upgrade.
func TestRoomPushRuleFollowsUpgrade(t *testing.T) {
	srv := testserver.Start(t)
	alice := srv.Register(t, "alice", false)
	st, body := srv.Raw(t, http.MethodPost, "/_matrix/client/v3/createRoom", alice.AccessToken, `{"preset":"public_chat","room_version":"10"}`)
	if st != 200 {
		t.Fatalf("createRoom: %d %v", st, body)
	}
	oldRoom := body["room_id"].(string)
	rulePath := func(room string) string {
		return "/_matrix/client/v3/pushrules/global/room/" + url.PathEscape(room)
	}
	if st, body := srv.Raw(t, http.MethodPut, rulePath(oldRoom), alice.AccessToken, `{"actions":["dont_notify"]}`); st != 200 {
		t.Fatalf("set rule: %d %v", st, body)
	}
	st, body = srv.Raw(t, http.MethodPost, fmt.Sprintf("/_matrix/client/v3/rooms/%s/upgrade", url.PathEscape(oldRoom)), alice.AccessToken, `{"new_version":"11"}`)
	if st != 200 {
		t.Fatalf("upgrade: %d %v", st, body)
	}
	newRoom := body["replacement_room"].(string)
	for i := 0; i < 200; i++ {
		if st, _ := srv.Raw(t, http.MethodGet, rulePath(newRoom), alice.AccessToken, ""); st == 200 {
			return
		}
		waitABit()
	}
	t.Fatalf("the room rule was not carried to the upgraded room %s", newRoom)
}
