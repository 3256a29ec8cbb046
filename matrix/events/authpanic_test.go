package events

import (
	"encoding/json/jsontext"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// TestPowerLevelsRemovingAnEqualIsForbidden: removing a user at the sender's own level from
// users is refused by rule 10.9; the auth rules library panics on it, which must come out as
// M_FORBIDDEN (a 403), never a panic. Removing a lower user stays allowed.
func TestPowerLevelsRemovingAnEqualIsForbidden(t *testing.T) {
	for _, rv := range []id.RoomVersion{id.RoomV2, id.RoomV11} {
		t.Run(string(rv), func(t *testing.T) {
			s := signer(t)
			byID := map[id.EventID]*pdu.PDU{}
			get := func(ids []id.EventID) ([]*pdu.PDU, error) {
				out := make([]*pdu.PDU, len(ids))
				for i, e := range ids {
					out[i] = byID[e]
				}
				return out, nil
			}
			empty, alice := "", "@alice:hearth.test"
			var prev []id.EventID
			depth := int64(0)
			build := func(typ, sk, content string, auth ...id.EventID) *Built {
				t.Helper()
				depth++
				b, err := Build(rv, "!r:hearth.test", Template{Type: typ, StateKey: &sk, Sender: id.UserID(alice), Content: jsontext.Value(content), RefHashes: RefHashesFrom(get)}, prev, auth, depth, time.Now(), s)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			keep := func(b *Built) id.EventID {
				byID[b.ID] = b.PDU
				prev = []id.EventID{b.ID}
				return b.ID
			}
			create := keep(build("m.room.create", empty, `{"creator":"@alice:hearth.test","room_version":"`+string(rv)+`"}`))
			join := keep(build("m.room.member", alice, `{"membership":"join"}`, create))
			pl := keep(build("m.room.power_levels", empty, `{"users":{"@alice:hearth.test":100,"@bob:hearth.test":100,"@carol:hearth.test":50}}`, create, join))

			drop := build("m.room.power_levels", empty, `{"users":{"@alice:hearth.test":100,"@carol:hearth.test":50}}`, create, join, pl)
			err := AuthorizeLocal(rv, drop.PDU, get, s)
			if me, ok := merr.As(err); !ok || me.Code != "M_FORBIDDEN" {
				t.Fatalf("removing an equal: want M_FORBIDDEN, got %v", err)
			}
			lower := build("m.room.power_levels", empty, `{"users":{"@alice:hearth.test":100,"@bob:hearth.test":100}}`, create, join, pl)
			if err := AuthorizeLocal(rv, lower.PDU, get, s); err != nil {
				t.Fatalf("removing a lower user: %v", err)
			}
		})
	}
}
