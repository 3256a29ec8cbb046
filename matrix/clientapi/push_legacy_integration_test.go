package clientapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

// push.legacy_mention_rules: off, a body naming bob does not highlight (spec v1.19); on, the
// three legacy rules are served in their v1.16 places and highlight by body, except for events
// that carry m.mentions.
func TestLegacyMentionRules(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			s := testserver.Start(t, func(c *config.Config) { c.Push.LegacyMentionRules = legacy })
			alice := s.Register(t, "alice", false)
			bob := s.Register(t, "bob", false)
			if err := bob.SetDisplayName(cs3Ctx, "Bobby Tables"); err != nil {
				t.Fatal(err)
			}
			override, content := pushRuleIDs(t, s, bob, "override"), pushRuleIDs(t, s, bob, "content")
			hasCUN := slices.Contains(content, ".m.rule.contains_user_name")
			iDN, iUM := slices.Index(override, ".m.rule.contains_display_name"), slices.Index(override, ".m.rule.is_user_mention")
			iRN, iRM := slices.Index(override, ".m.rule.roomnotif"), slices.Index(override, ".m.rule.is_room_mention")
			if legacy && (!hasCUN || iDN != iUM+1 || iRN != iRM+1) {
				t.Fatalf("legacy rules missing or misplaced: override %v content %v", override, content)
			}
			if !legacy && (hasCUN || iDN >= 0 || iRN >= 0) {
				t.Fatalf("legacy rules served while off: override %v content %v", override, content)
			}
			// The content rule's pattern is bob's localpart.
			if legacy {
				r := cs3Do(t, s, http.MethodGet, pushPath("content", ".m.rule.contains_user_name"), bob.AccessToken, nil).ok(t)
				if r["pattern"] != "bob" {
					t.Fatalf("contains_user_name %v", r)
				}
			}

			// Three people so room_one_to_one does not make every message notify-only noise.
			carol := s.Register(t, "carol", false)
			room := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat"})
			cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)
			cs3R(carol.JoinRoomByID(cs3Ctx, room)).must(t)

			rxText(t, alice, room, "hello bob!")                // contains_user_name
			rxText(t, alice, room, "ask Bobby Tables about it") // contains_display_name
			rxSend(t, alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "bob: not you, carol",
				"m.mentions": map[string]any{"user_ids": []any{carol.UserID.String()}}}) // m.mentions wins
			rxText(t, alice, room, "plain")
			wantH := float64(0)
			if legacy {
				wantH = 2
			}
			pushEventually(t, "counts", func() string {
				if h, n := pushUnread(t, s, bob, room); h != wantH || n != float64(4) {
					return fmt.Sprintf("highlight %v notification %v, want %v 4", h, n, wantH)
				}
				return ""
			})
		})
	}
}
