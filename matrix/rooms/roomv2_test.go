package rooms

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	jsonv2 "encoding/json/v2"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// TestCreateRoomV2 creates a room of version 2 (the v1 event format) and checks every stored
// event as another server would receive it: an event_id of this server inside the event,
// [id, {"sha256": hash}] references whose hashes are the referenced events' reference hashes,
// a valid content hash and a signature that verifies with the server's key.
func TestCreateRoomV2(t *testing.T) {
	s, st := relTestService(t)
	ctx := context.Background()
	alice, bob := id.UserID("@alice:hearth.test"), id.UserID("@bob:hearth.test")
	name := "old style"
	room, err := s.CreateRoom(ctx, CreateRequest{Creator: alice, Preset: "public_chat", RoomVersion: id.RoomV2, Name: &name, Invite: []id.UserID{bob}})
	if err != nil {
		t.Fatalf("create v2 room: %v", err)
	}
	if !strings.HasSuffix(room.String(), ":hearth.test") {
		t.Fatalf("room ID %s is not of this server", room)
	}
	if _, err := s.Send(ctx, room, memberTemplate(bob, "join"), SendOpts{}); err != nil {
		t.Fatalf("bob joins: %v", err)
	}
	msg := relSend(t, s, room, bob, map[string]any{"msgtype": "m.text", "body": "hello"})
	if !strings.HasPrefix(msg.EventID.String(), "$") || !strings.HasSuffix(msg.EventID.String(), ":hearth.test") {
		t.Fatalf("message ID %s is not a v1-format ID of this server", msg.EventID)
	}

	pub := s.signer.Key.Public().(ed25519.PublicKey)
	refHash := map[id.EventID][]byte{}
	var types []string
	err = st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(room.String())
		if err != nil {
			return err
		}
		rec, err := txn.Room(nid)
		if err != nil {
			return err
		}
		if rec.Version != "2" {
			t.Errorf("stored room version %q", rec.Version)
		}
		return txn.Timeline(nid, 0, false, func(pos uint64) (bool, error) {
			ev, err := txn.Event(pos)
			if err != nil {
				return false, err
			}
			var v pdu.RoomV1PDU
			if err := jsonv2.Unmarshal(ev.PDU, &v); err != nil {
				return false, err
			}
			types = append(types, v.Type)
			if v.EventID.String() != ev.ID || !strings.HasSuffix(ev.ID, ":hearth.test") {
				t.Errorf("%s: event_id field %q, stored ID %q", v.Type, v.EventID, ev.ID)
			}
			for _, ref := range append(append([]pdu.V1EventReference(nil), v.PrevEvents...), v.AuthEvents...) {
				want, ok := refHash[ref.ID]
				if !ok {
					t.Errorf("%s references %s, which is not an earlier event", v.Type, ref.ID)
					continue
				}
				if string(ref.Hashes.SHA256) != string(want) {
					t.Errorf("%s: reference hash of %s is %x, want %x", v.Type, ref.ID, ref.Hashes.SHA256, want)
				}
			}
			if !v.VerifyContentHash() {
				t.Errorf("%s: content hash does not match", v.Type)
			}
			if err := v.VerifySignature(id.RoomV2, "hearth.test", func(string, id.KeyID, time.Time) (id.SigningKey, time.Time, error) {
				return id.SigningKey(base64.RawStdEncoding.EncodeToString(pub)), time.Now().Add(time.Hour), nil
			}); err != nil {
				t.Errorf("%s: signature: %v", v.Type, err)
			}
			h, err := v.GetReferenceHash(id.RoomV2)
			if err != nil {
				return false, err
			}
			refHash[v.EventID] = h[:]
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "m.room.create m.room.member m.room.power_levels m.room.join_rules m.room.history_visibility m.room.name m.room.member m.room.member m.room.message"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("timeline:\n got %s\nwant %s", got, want)
	}
	create, err := s.CurrentState(ctx, room, "m.room.create", "")
	if err != nil || create == nil {
		t.Fatalf("create event: %v", err)
	}
	if c := gjson.GetBytes(create.Lite.Content, "creator").Str; c != alice.String() {
		t.Fatalf("create content creator %q (versions 1 to 10 carry it)", c)
	}

	// The auth rules still hold: bob may not change the power levels.
	sk := ""
	_, err = s.Send(ctx, room, events.Template{Type: "m.room.power_levels", StateKey: &sk, Sender: bob, Content: []byte(`{"users":{"@bob:hearth.test":100}}`)}, SendOpts{})
	if me, ok := merr.As(err); !ok || me.Code != "M_FORBIDDEN" {
		t.Fatalf("bob sets power levels: want M_FORBIDDEN, got %v", err)
	}
}

// TestCreateRoomV1Refused: version 1 needs state resolution v1, which Hearth lacks; creating
// such a room is refused with the spec's errcode rather than made with the wrong algorithm.
func TestCreateRoomV1Refused(t *testing.T) {
	s, _ := relTestService(t)
	_, err := s.CreateRoom(context.Background(), CreateRequest{Creator: "@alice:hearth.test", RoomVersion: id.RoomV1})
	me, ok := merr.As(err)
	if !ok || me.Code != "M_UNSUPPORTED_ROOM_VERSION" || me.Status != 400 {
		t.Fatalf("create v1 room: want 400 M_UNSUPPORTED_ROOM_VERSION, got %v", err)
	}
}

func memberTemplate(u id.UserID, membership string) events.Template {
	sk := u.String()
	return events.Template{Type: "m.room.member", StateKey: &sk, Sender: u, Content: []byte(`{"membership":"` + membership + `"}`)}
}
