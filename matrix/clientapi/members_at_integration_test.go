package clientapi_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// GET /members?at= with the prev_batch of a sync, step for step as Complement's
// TestGetRoomMembersAtPoint: the sync shows the room from its create event, so its prev_batch
// lies before the room's first event, and the members there are the creator alone (not nobody,
// and not bob, who joined later). A token from after bob's join lists both; a bad token is
// M_INVALID_PARAM.
func TestMembersAtSyncToken(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	room := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat"})
	rxText(t, alice, room, "Hello world!")

	sync := rxSync(t, s, alice, url.Values{})
	if tl := rxTimeline(sync, room); len(tl) == 0 || rxDig(tl[0], "type") != "m.room.create" {
		t.Fatalf("the sync timeline %v does not start with the create event (the case under test)", tl)
	}
	before, _ := rxDig(sync, "rooms", "join", room.String(), "timeline", "prev_batch").(string)
	if before == "" {
		t.Fatal("no prev_batch in the sync")
	}
	if _, err := bob.JoinRoomByID(rxCtx(t), room); err != nil {
		t.Fatal(err)
	}
	rxText(t, bob, room, "Hello back")
	after, _ := rxSync(t, s, alice, url.Values{})["next_batch"].(string)

	membersAt := func(tok string) []string {
		t.Helper()
		body := rxOK(t, s, "GET", "/_matrix/client/v3/rooms/"+rxEsc(room.String())+"/members?at="+url.QueryEscape(tok), alice.AccessToken, nil)
		chunk, _ := body["chunk"].([]any)
		var out []string
		for _, e := range chunk {
			if rxDig(e, "room_id") != room.String() {
				t.Errorf("member event of another room: %v", e)
			}
			out = append(out, rxDig(e, "state_key").(string)+"="+rxDig(e, "content", "membership").(string))
		}
		slices.Sort(out)
		return out
	}
	if got, want := membersAt(before), []string{alice.UserID.String() + "=join"}; !slices.Equal(got, want) {
		t.Fatalf("members at the sync's prev_batch: %v, want %v", got, want)
	}
	want := []string{alice.UserID.String() + "=join", bob.UserID.String() + "=join"}
	slices.Sort(want)
	if got := membersAt(after); !slices.Equal(got, want) {
		t.Fatalf("members after bob's join: %v, want %v", got, want)
	}
	status, body := rxDo(t, s, "GET", "/_matrix/client/v3/rooms/"+rxEsc(room.String())+"/members?at=nonsense", alice.AccessToken, nil)
	rxWant(t, "members at a malformed token", status, body, 400, "M_INVALID_PARAM")
}
