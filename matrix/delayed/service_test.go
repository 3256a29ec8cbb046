package delayed_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/delayed"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// The service on a real Badger store with the real rooms service, as the appliance builds it.

const server = "hearth.test"

type env struct {
	st    *store.Store
	rooms *rooms.Service
	room  id.RoomID
	alice id.UserID
}

func newEnv(t *testing.T) *env {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(filepath.Join(t.TempDir(), "store"), store.Options{Logger: log})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	acc := accounts.New(st, server, log)
	r := rooms.New(st, events.Signer{ServerName: server, KeyID: "ed25519:test", Key: priv}, acc, log)
	alice := id.UserID("@alice:" + server)
	room, err := r.CreateRoom(context.Background(), rooms.CreateRequest{Creator: alice, Preset: "public_chat"})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	return &env{st: st, rooms: r, room: room, alice: alice}
}

func (e *env) open(t *testing.T) *delayed.Service {
	t.Helper()
	svc, err := delayed.New(e.st, e.rooms, delayed.Options{MaxDelay: time.Hour, MaxPerUser: 10}, nil)
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	t.Cleanup(svc.Close)
	return svc
}

// statePos is the stream position of the room's current state event (0 when none).
func (e *env) statePos(t *testing.T, typ, sk string) uint64 {
	t.Helper()
	ev, err := e.rooms.CurrentState(context.Background(), e.room, typ, sk)
	if err != nil {
		t.Fatalf("current state: %v", err)
	}
	if ev == nil {
		return 0
	}
	return ev.Pos
}

func TestNewRefusesUnboundedOptions(t *testing.T) {
	e := newEnv(t)
	if _, err := delayed.New(e.st, e.rooms, delayed.Options{MaxDelay: 0, MaxPerUser: 1}, nil); err == nil {
		t.Error("zero max delay accepted")
	}
	if _, err := delayed.New(e.st, e.rooms, delayed.Options{MaxDelay: time.Hour}, nil); err == nil {
		t.Error("zero per-user limit accepted")
	}
}

// Events that fall due while no service runs are sent when the next one starts, oldest due
// first; an unreadable record does not stop the start.
func TestOverdueSentInDueOrderAfterReopen(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first := e.open(t) // never started: the "server" stops before anything is due
	keys := map[string]time.Duration{"a": 300 * time.Millisecond, "b": 100 * time.Millisecond, "c": 200 * time.Millisecond}
	for sk, d := range keys {
		_, err := first.Schedule(ctx, delayed.Request{User: e.alice, RoomID: e.room, Type: "com.example.t",
			StateKey: &sk, Content: json.RawMessage(`{"k":"` + sk + `"}`), Delay: d})
		if err != nil {
			t.Fatalf("schedule %s: %v", sk, err)
		}
	}
	if got := first.List(e.alice); len(got) != 3 || got[0].DueMS() > got[1].DueMS() || got[1].DueMS() > got[2].DueMS() {
		t.Fatalf("want 3 listed soonest first, got %+v", got)
	}
	first.Close()
	if err := e.st.Update(func(txn *store.Txn) error {
		return txn.PutDelayedEvent("@mallory:"+server, "broken", []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(350 * time.Millisecond)
	for sk := range keys {
		if p := e.statePos(t, "com.example.t", sk); p != 0 {
			t.Fatalf("%s sent while no service ran", sk)
		}
	}

	second := e.open(t)
	if got := second.List(e.alice); len(got) != 3 {
		t.Fatalf("reopened service lists %d events, want 3", len(got))
	}
	second.Start()
	deadline := time.Now().Add(5 * time.Second)
	for len(second.List(e.alice)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("overdue events not sent: %+v", second.List(e.alice))
		}
		time.Sleep(10 * time.Millisecond)
	}
	pa, pb, pc := e.statePos(t, "com.example.t", "a"), e.statePos(t, "com.example.t", "b"), e.statePos(t, "com.example.t", "c")
	if pb == 0 || !(pb < pc && pc < pa) {
		t.Fatalf("want b (100 ms) < c (200 ms) < a (300 ms) in stream order, got b=%d c=%d a=%d", pb, pc, pa)
	}
}

// A restart moves the due time; a cancel removes the record from the store for good.
func TestRestartAndCancelPersist(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.open(t)
	sk := "x"
	idRestart, err := svc.Schedule(ctx, delayed.Request{User: e.alice, RoomID: e.room, Type: "com.example.t", StateKey: &sk, Content: json.RawMessage(`{}`), Delay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	idCancel, err := svc.Schedule(ctx, delayed.Request{User: e.alice, RoomID: e.room, Type: "com.example.u", Content: json.RawMessage(`{}`), Delay: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	before := svc.List(e.alice)[0].RunningSince
	time.Sleep(20 * time.Millisecond)
	if err := svc.Restart(idRestart); err != nil {
		t.Fatal(err)
	}
	if err := svc.Cancel(idCancel); err != nil {
		t.Fatal(err)
	}
	if err := svc.Cancel(idCancel); err == nil {
		t.Fatal("second cancel succeeded")
	}
	svc.Close()
	again := e.open(t)
	got := again.List(e.alice)
	if len(got) != 1 || got[0].DelayID != idRestart || got[0].RunningSince < before+20 {
		t.Fatalf("after reopen want only the restarted event with a later running_since (> %d), got %+v", before, got)
	}
}
