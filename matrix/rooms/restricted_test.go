package rooms

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

func TestParseRestrictRules(t *testing.T) {
	for _, c := range []struct {
		content    string
		restricted bool
		allowed    []id.RoomID
	}{
		{`{"join_rule": "public"}`, false, nil},
		{`{"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": "!a:x"}]}`, true, []id.RoomID{"!a:x"}},
		{`{"join_rule": "knock_restricted", "allow": [{"type": "m.room_membership", "room_id": "!a:x"}, {"type": "m.other", "room_id": "!b:x"}, {"type": "m.room_membership"}]}`, true, []id.RoomID{"!a:x"}},
		// Mangled allow lists grant nothing: entries that are not objects are skipped, and an
		// allow that is not a list is no list at all.
		{`{"join_rule": "restricted", "allow": ["invalid", {"type": "m.room_membership", "room_id": "!c:x"}]}`, true, []id.RoomID{"!c:x"}},
		{`{"join_rule": "restricted", "allow": "invalid"}`, true, nil},
		{`{"join_rule": "restricted"}`, true, nil},
		{`not json`, false, nil},
	} {
		r := parseRestrictRules(json.RawMessage(c.content))
		if r.restricted() != c.restricted || !slices.Equal(r.Allowed, c.allowed) {
			t.Errorf("%s: restricted %v allowed %v, want %v %v", c.content, r.restricted(), r.Allowed, c.restricted, c.allowed)
		}
	}
}

func TestJoinElsewhere(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&merr.Error{Status: 400, Code: CodeUnableToGrantJoin}, true},
		{fmt.Errorf("make_join: %w", &merr.Error{Status: 400, Code: CodeUnableToAuthoriseJoin}), true},
		{merr.Forbidden("not in the allowed room"), false},
		{fmt.Errorf("plain"), false},
		{nil, false},
	} {
		if got := JoinElsewhere(c.err); got != c.want {
			t.Errorf("JoinElsewhere(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestInviteLevel(t *testing.T) {
	// Public rooms keep invites (and the restricted joins a member may authorise) to
	// moderators; in private chats every member may invite.
	for preset, want := range map[string]int{"public_chat": 50, "private_chat": 0, "trusted_private_chat": 0} {
		if got := inviteLevel(preset); got != want {
			t.Errorf("inviteLevel(%s) = %d, want %d", preset, got, want)
		}
	}
}
