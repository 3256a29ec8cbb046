package clientapi_test

import (
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// MSC4306 thread subscriptions and the MSC4308 sliding sync extension.
func TestThreadSubscriptions(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	tok := alice.AccessToken
	room := cs3CreateRoom(t, s, alice, map[string]any{})
	path := func(root id.EventID) string {
		return "/_matrix/client/unstable/io.element.msc4306/rooms/" + cs3Esc(room.String()) + "/thread/" + cs3Esc(root.String()) + "/subscription"
	}
	reply := func(root id.EventID, body string) id.EventID {
		return rxSend(t, alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": body,
			"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": root.String()}})
	}
	root := rxText(t, alice, room, "root")
	other := rxText(t, alice, room, "another root")
	otherReply := reply(other, "elsewhere")

	// Sliding sync position before any subscription, with the extension on.
	slide := func(cli *mautrix.Client, pos string) map[string]any {
		body := map[string]any{"extensions": map[string]any{"io.element.msc4308.thread_subscriptions": map[string]any{"enabled": true, "limit": 10}}}
		if pos != "" {
			body["pos"] = pos
		}
		return cs3Do(t, s, http.MethodPost, "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?timeout=0", cli.AccessToken, body).ok(t)
	}
	first := slide(alice, "")
	if rxDig(first, "extensions", "io.element.msc4308.thread_subscriptions", "subscribed") != nil {
		t.Fatalf("subscriptions before any: %v", first["extensions"])
	}

	// Manual subscribe, get, unsubscribe.
	cs3Do(t, s, http.MethodGet, path(root), tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodPut, path(root), tok, map[string]any{}).ok(t)
	if got := cs3Do(t, s, http.MethodGet, path(root), tok, nil).ok(t); got["automatic"] != false {
		t.Fatalf("manual subscription %v", got)
	}
	// The incremental sliding sync reports it with a bump_stamp.
	inc := slide(alice, first["pos"].(string))
	sub := rxDig(inc, "extensions", "io.element.msc4308.thread_subscriptions", "subscribed", room.String(), root.String())
	if rxDig(sub, "automatic") != false || rxDig(sub, "bump_stamp") == nil {
		t.Fatalf("sliding sync extension %v", inc["extensions"])
	}
	// Another user does not see alice's subscriptions.
	if got := rxDig(slide(bob, ""), "extensions", "io.element.msc4308.thread_subscriptions", "subscribed"); got != nil {
		t.Fatalf("bob sees %v", got)
	}
	cs3Do(t, s, http.MethodDelete, path(root), tok, nil).ok(t)
	cs3Do(t, s, http.MethodGet, path(root), tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodDelete, path(root), tok, nil).ok(t) // again: still fine

	// Automatic subscriptions: the cause must be in the thread.
	cs3Do(t, s, http.MethodPut, path(root), tok, map[string]any{"automatic": root.String()}).want(t, 400, "IO.ELEMENT.MSC4306.M_NOT_IN_THREAD")
	cs3Do(t, s, http.MethodPut, path(root), tok, map[string]any{"automatic": otherReply.String()}).want(t, 400, "IO.ELEMENT.MSC4306.M_NOT_IN_THREAD")
	cs3Do(t, s, http.MethodPut, path(root), tok, map[string]any{"automatic": 5}).want(t, 400, "M_BAD_JSON")
	// The conflict rule: causes from before an unsubscription are refused, later ones work.
	root2 := rxText(t, alice, room, "second root")
	r1 := reply(root2, "one")
	cs3Do(t, s, http.MethodPut, path(root2), tok, map[string]any{"automatic": r1.String()}).ok(t)
	if got := cs3Do(t, s, http.MethodGet, path(root2), tok, nil).ok(t); got["automatic"] != true {
		t.Fatalf("automatic subscription %v", got)
	}
	r2 := reply(root2, "two")
	cs3Do(t, s, http.MethodDelete, path(root2), tok, nil).ok(t)
	r3 := reply(root2, "three")
	for _, cause := range []id.EventID{r1, r2} {
		cs3Do(t, s, http.MethodPut, path(root2), tok, map[string]any{"automatic": cause.String()}).want(t, 409, "IO.ELEMENT.MSC4306.M_CONFLICTING_UNSUBSCRIPTION")
		cs3Do(t, s, http.MethodGet, path(root2), tok, nil).want(t, 404, "M_NOT_FOUND")
	}
	cs3Do(t, s, http.MethodPut, path(root2), tok, map[string]any{"automatic": r3.String()}).ok(t)
	if got := cs3Do(t, s, http.MethodGet, path(root2), tok, nil).ok(t); got["automatic"] != true {
		t.Fatalf("automatic after a newer cause %v", got)
	}
	// A manual subscription replaces an automatic one; a later automatic one keeps it manual.
	cs3Do(t, s, http.MethodPut, path(root2), tok, map[string]any{}).ok(t)
	cs3Do(t, s, http.MethodPut, path(root2), tok, map[string]any{"automatic": reply(root2, "four").String()}).ok(t)
	if got := cs3Do(t, s, http.MethodGet, path(root2), tok, nil).ok(t); got["automatic"] != false {
		t.Fatalf("manual after automatic %v", got)
	}

	// Unknown threads, and threads in rooms the user cannot see, are 404.
	cs3Do(t, s, http.MethodPut, path("$notathread:example.org"), tok, map[string]any{}).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodGet, path("$notathread:example.org"), tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodPut, path(root), bob.AccessToken, map[string]any{}).want(t, 404, "M_NOT_FOUND")
}
