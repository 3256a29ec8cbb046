package rooms

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/store"
)

type noProfiles struct{}

func (noProfiles) Profile(context.Context, id.UserID) (string, string, error) { return "", "", nil }

func relTestService(t *testing.T) (*Service, *store.Store) {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(st, events.Signer{ServerName: "hearth.test", KeyID: "ed25519:t", Key: priv}, noProfiles{}, slog.New(slog.DiscardHandler)), st
}

func relSend(t *testing.T, s *Service, room id.RoomID, sender id.UserID, content map[string]any) *Appended {
	t.Helper()
	b, _ := json.Marshal(content)
	a, err := s.Send(context.Background(), room, events.Template{Type: "m.room.message", Sender: sender, Content: b}, SendOpts{})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return a
}

func TestParseRelatesTo(t *testing.T) {
	for _, c := range []struct {
		content string
		ok      bool
		rel     RelatesTo
	}{
		{`{"m.relates_to":{"rel_type":"m.thread","event_id":"$a"}}`, true, RelatesTo{RelType: "m.thread", EventID: "$a"}},
		{`{"m.relates_to":{"rel_type":"m.annotation","event_id":"$a","key":"k"}}`, true, RelatesTo{RelType: "m.annotation", EventID: "$a", Key: "k"}},
		{`{"m.relates_to":{"m.in_reply_to":{"event_id":"$a"}}}`, false, RelatesTo{}},
		{`{"m.relates_to":{"rel_type":5,"event_id":"$a"}}`, false, RelatesTo{}},
		{`{"m.relates_to":{"rel_type":"m.thread","event_id":"a"}}`, false, RelatesTo{}},
		{`{"m.relates_to":"x"}`, false, RelatesTo{}},
		{`{}`, false, RelatesTo{}},
		{`not json`, false, RelatesTo{}},
	} {
		rel, ok := ParseRelatesTo([]byte(c.content))
		if ok != c.ok || rel != c.rel {
			t.Errorf("ParseRelatesTo(%s) = %+v %v", c.content, rel, ok)
		}
	}
}

// TestBackfillRelations rebuilds the index of a store whose events predate it.
func TestBackfillRelations(t *testing.T) {
	s, st := relTestService(t)
	ctx := context.Background()
	alice := id.UserID("@alice:hearth.test")
	room, err := s.CreateRoom(ctx, CreateRequest{Creator: alice, Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	root := relSend(t, s, room, alice, map[string]any{"body": "root"})
	var children []*Appended
	for range 3 {
		children = append(children, relSend(t, s, room, alice, map[string]any{"body": "t",
			"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root.EventID}}))
	}
	children = append(children, relSend(t, s, room, alice, map[string]any{"body": "r",
		"m.relates_to": map[string]any{"rel_type": "m.reference", "event_id": root.EventID}}))

	var nid uint64
	snapshot := func() (store.ThreadRecord, int64, []string) {
		t.Helper()
		var rec store.ThreadRecord
		var part int64
		var types []string
		err := st.View(func(txn *store.Txn) error {
			var err error
			if nid, err = txn.RoomNID(room.String()); err != nil {
				return err
			}
			if r, err := txn.Thread(nid, root.EventID.String()); err == nil {
				rec = *r
			}
			if part, err = txn.ThreadParticipation(nid, root.EventID.String(), alice.String()); err != nil {
				return err
			}
			types, err = txn.RelationTypes(nid, root.EventID.String())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return rec, part, types
	}
	want, wantPart, wantTypes := snapshot()
	if want.Count != 3 || want.Latest != children[2].Pos || wantPart != 3 || len(wantTypes) != 2 {
		t.Fatalf("index after sends: %+v %d %v", want, wantPart, wantTypes)
	}

	// Make it an old store: no index.
	err = st.Update(func(txn *store.Txn) error {
		for _, c := range children {
			if _, err := txn.DeleteRelation(c.Pos); err != nil {
				return err
			}
		}
		if err := txn.AddThreadParticipation(nid, root.EventID.String(), alice.String(), -3); err != nil {
			return err
		}
		return txn.DeleteThread(nid, root.EventID.String(), want.Latest)
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec, _, types := snapshot(); rec.Count != 0 || len(types) != 0 {
		t.Fatalf("index not wiped: %+v %v", rec, types)
	}
	if err := s.BackfillRelations(); err != nil {
		t.Fatal(err)
	}
	if rec, part, types := snapshot(); rec != want || part != wantPart || len(types) != 2 {
		t.Fatalf("after back-fill: %+v %d %v, want %+v %d %v", rec, part, types, want, wantPart, wantTypes)
	}
	// A second run is a no-op, and re-indexing an indexed event changes nothing.
	if err := s.BackfillRelations(); err != nil {
		t.Fatal(err)
	}
	err = st.Update(func(txn *store.Txn) error {
		rec, err := txn.Event(children[0].Pos)
		if err != nil {
			return err
		}
		return backfillOne(txn, children[0].Pos, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec, part, _ := snapshot(); rec != want || part != wantPart {
		t.Fatalf("back-fill not idempotent: %+v %d", rec, part)
	}
}
