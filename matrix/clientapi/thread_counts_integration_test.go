package clientapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Unread counts split by thread, from push evaluation and threaded read receipts: the spec's
// "Threaded read receipts" and unread_thread_notifications, the timeline of Complement's
// TestThreadedReceipts (with m.mentions for the highlights).
//
//	A <- B <- C(@bob) <- E   [thread on A]
//	A, D(@bob), F (reference to A), G (reaction to F) in the main timeline
func TestThreadedUnreadCounts(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	room := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat"})
	cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)
	mention := map[string]any{"user_ids": []any{bob.UserID.String()}}
	a := rxText(t, alice, room, "A")
	inThread := func(body string, extra map[string]any) id.EventID {
		c := map[string]any{"msgtype": "m.text", "body": body, "m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": a.String()}}
		for k, v := range extra {
			c[k] = v
		}
		return rxSend(t, alice, room, "m.room.message", c)
	}
	b := inThread("B", nil)
	inThread("C", map[string]any{"m.mentions": mention})
	d := rxSend(t, alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "D", "m.mentions": mention})
	inThread("E", nil)
	f := rxSend(t, alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "F",
		"m.relates_to": map[string]any{"rel_type": "m.reference", "event_id": a.String()}})
	rxSend(t, alice, room, "m.reaction", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": f.String(), "key": "x"}})

	threadFilter := `{"room":{"timeline":{"unread_thread_notifications":true}}}`
	counts := func(filtered bool) string {
		q := url.Values{}
		if filtered {
			q.Set("filter", threadFilter)
		}
		jr := rxDig(rxSync(t, s, bob, q), "rooms", "join", room.String())
		out := fmt.Sprintf("%v/%v", rxDig(jr, "unread_notifications", "highlight_count"), rxDig(jr, "unread_notifications", "notification_count"))
		if th := rxDig(jr, "unread_thread_notifications", a.String()); th != nil {
			out += fmt.Sprintf(" thread %v/%v", rxDig(th, "highlight_count"), rxDig(th, "notification_count"))
		}
		return out
	}
	expect := func(step, unfiltered, filtered string) {
		t.Helper()
		pushEventually(t, step, func() string {
			if got := counts(false); got != unfiltered {
				return "unfiltered " + got + ", want " + unfiltered
			}
			if got := counts(true); got != filtered {
				return "filtered " + got + ", want " + filtered
			}
			return ""
		})
	}
	receipt := func(ev id.EventID, thread string) {
		body := map[string]any{}
		if thread != "" {
			body["thread_id"] = thread
		}
		cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/rooms/"+cs3Esc(room.String())+"/receipt/m.read/"+cs3Esc(ev.String()), bob.AccessToken, body).ok(t)
	}
	expect("initial", "2/6", "1/3 thread 1/3")
	receipt(a, "main") // reads A only: the main timeline
	expect("main receipt", "2/5", "1/2 thread 1/3")
	receipt(b, a.String()) // reads B: the thread up to B
	expect("thread receipt", "2/4", "1/2 thread 1/2")
	receipt(d, "") // unthreaded: everything up to D (B, C, D); E and F stay
	expect("unthreaded receipt", "0/2", "0/1 thread 0/1")
}
