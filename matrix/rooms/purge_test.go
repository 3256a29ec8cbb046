package rooms

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// TestPurgeHistory purges more events than one batch holds, with relations and a thread, and
// checks what stays.
func TestPurgeHistory(t *testing.T) {
	s, st := relTestService(t)
	ctx := context.Background()
	alice := id.UserID("@alice:hearth.test")
	room, err := s.CreateRoom(ctx, CreateRequest{Creator: alice, Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	root := relSend(t, s, room, alice, map[string]any{"body": "root"})
	for range 3 {
		relSend(t, s, room, alice, map[string]any{"body": "t", "m.relates_to": map[string]any{"rel_type": RelThread, "event_id": root.EventID}})
	}
	relSend(t, s, room, alice, map[string]any{"body": "r", "m.relates_to": map[string]any{"rel_type": "m.reference", "event_id": root.EventID}})
	msgs := 2*purgeBatch + 17
	for i := range msgs {
		relSend(t, s, room, alice, map[string]any{"body": fmt.Sprintf("m%d", i)})
	}
	topic, err := s.Send(ctx, room, events.Template{Type: "m.room.topic", Sender: alice, StateKey: new(string), Content: []byte(`{"topic":"kept"}`)}, SendOpts{})
	if err != nil {
		t.Fatal(err)
	}
	cut := relSend(t, s, room, alice, map[string]any{"body": "cut"})
	after := relSend(t, s, room, alice, map[string]any{"body": "after"})

	var nid uint64
	timeline := func() (kept int, ids map[uint64]bool) {
		ids = map[uint64]bool{}
		if err := st.View(func(txn *store.Txn) error {
			var err error
			if nid, err = txn.RoomNID(room.String()); err != nil {
				return err
			}
			return txn.Timeline(nid, 0, false, func(pos uint64) (bool, error) {
				ids[pos] = true
				return true, nil
			})
		}); err != nil {
			t.Fatal(err)
		}
		return len(ids), ids
	}
	before, _ := timeline()

	// Refusals first: nothing may change.
	if _, err := s.PurgeHistory(ctx, PurgeRequest{RoomID: "!nope:hearth.test", UpToTS: 1}); !isCode(err, "M_NOT_FOUND") {
		t.Fatalf("unknown room: %v", err)
	}
	other, err := s.CreateRoom(ctx, CreateRequest{Creator: alice})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeHistory(ctx, PurgeRequest{RoomID: other, UpToEventID: cut.EventID.String(), DeleteLocal: true}); !isCode(err, "M_INVALID_PARAM") {
		t.Fatalf("event of another room: %v", err)
	}
	if n, err := s.PurgeHistory(ctx, PurgeRequest{RoomID: room, UpToEventID: cut.EventID.String()}); err != nil || n != 0 {
		t.Fatalf("local events purged without DeleteLocal: %d %v", n, err)
	}

	tokenCalls := 0
	n, err := s.PurgeHistory(ctx, PurgeRequest{RoomID: room, UpToEventID: cut.EventID.String(), DeleteLocal: true,
		Tokens: func(*store.EventRecord) []string { tokenCalls++; return []string{"m0"} }})
	want := 1 + 3 + 1 + msgs
	if err != nil || n != want || tokenCalls != want {
		t.Fatalf("purged %d (tokens asked %d), want %d: %v", n, tokenCalls, want, err)
	}
	kept, ids := timeline()
	if kept != before-want || !ids[topic.Pos] || !ids[cut.Pos] || !ids[after.Pos] || ids[root.Pos] {
		t.Fatalf("timeline after purge: %d of %d kept", kept, before)
	}
	err = st.View(func(txn *store.Txn) error {
		if _, err := txn.EventPos(root.EventID.String()); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("root event ID still indexed: %v", err)
		}
		if _, err := txn.Thread(nid, root.EventID.String()); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("thread summary of a purged root kept: %v", err)
		}
		types, err := txn.RelationTypes(nid, root.EventID.String())
		if err != nil || len(types) != 0 {
			return fmt.Errorf("relations kept: %v %v", types, err)
		}
		for pos := range ids { // every kept timeline entry still loads
			if _, err := txn.Event(pos); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The latest event is never purged, even when the point is past it.
	if _, err := s.PurgeHistory(ctx, PurgeRequest{RoomID: room, UpToTS: 1 << 62, DeleteLocal: true}); err != nil {
		t.Fatal(err)
	}
	if _, ids = timeline(); !ids[after.Pos] || ids[cut.Pos] || !ids[topic.Pos] {
		t.Fatal("timestamp purge: wrong events kept")
	}
}

func isCode(err error, code string) bool {
	var me *merr.Error
	return errors.As(err, &me) && me.Code == code
}
