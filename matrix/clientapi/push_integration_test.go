package clientapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Push: rule CRUD, counts in /sync, /notifications, pushers and delivery to a push gateway.

func pushPath(kind, rule string) string {
	return "/_matrix/client/v3/pushrules/global/" + kind + "/" + url.PathEscape(rule)
}

// pushRuleIDs lists the rule IDs of one kind of the user's ruleset.
func pushRuleIDs(t *testing.T, s *testserver.Server, cli *mautrix.Client, kind string) []string {
	t.Helper()
	body := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/pushrules/", cli.AccessToken, nil).ok(t)
	var out []string
	rules, _ := rxDig(body, "global", kind).([]any)
	for _, r := range rules {
		out = append(out, rxDig(r, "rule_id").(string))
	}
	return out
}

// pushEventually retries check until it returns "" or the deadline passes.
func pushEventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPushRulesCRUD(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	tok := alice.AccessToken
	put := func(kind, rule, query string, body any) cs3Resp {
		return cs3Do(t, s, http.MethodPut, pushPath(kind, rule)+query, tok, body)
	}
	cond := map[string]any{"actions": []any{"notify"}, "conditions": []any{map[string]any{"kind": "event_match", "key": "content.body", "pattern": "cake"}}}

	put("override", "a", "", cond).ok(t)
	put("override", "b", "", cond).ok(t) // new rules go first among the user's rules
	put("override", "c", "?after=a", cond).ok(t)
	put("override", "d", "?before=c", cond).ok(t)
	got := pushRuleIDs(t, s, alice, "override")
	want := []string{".m.rule.master", "b", "a", "d", "c", ".m.rule.suppress_notices"}
	if len(got) < len(want) || fmt.Sprint(got[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("override order %v", got)
	}
	// Replacing keeps the position; the rule reads back as stored.
	put("override", "a", "", map[string]any{"actions": []any{"notify", map[string]any{"set_tweak": "highlight"}}, "conditions": []any{}}).ok(t)
	r := cs3Do(t, s, http.MethodGet, pushPath("override", "a"), tok, nil).ok(t)
	if r["rule_id"] != "a" || r["default"] != false || r["enabled"] != true || fmt.Sprint(r["actions"]) != "[notify map[set_tweak:highlight]]" {
		t.Fatalf("rule a %v", r)
	}
	if got := pushRuleIDs(t, s, alice, "override"); fmt.Sprint(got[1:5]) != "[b a d c]" {
		t.Fatalf("order after replace %v", got)
	}
	put("content", "cakes", "", map[string]any{"actions": []any{"notify"}, "pattern": "cake*"}).ok(t)
	if r := cs3Do(t, s, http.MethodGet, pushPath("content", "cakes"), tok, nil).ok(t); r["pattern"] != "cake*" {
		t.Fatalf("content rule %v", r)
	}
	put("room", "!room:hs", "", map[string]any{"actions": []any{}}).ok(t)

	// Errors.
	put("override", ".m.rule.mine", "", cond).want(t, 400, "M_INVALID_PARAM")
	put("override", "x", "?before=nope", cond).want(t, 404, "M_NOT_FOUND")
	put("override", "x", "?after=.m.rule.suppress_notices", cond).want(t, 400, "M_INVALID_PARAM")
	put("override", "x", "", map[string]any{"conditions": []any{}}).want(t, 400, "M_MISSING_PARAM")
	put("override", "x", "", map[string]any{"actions": []any{"explode"}}).want(t, 400, "M_INVALID_PARAM")
	put("content", "x", "", map[string]any{"actions": []any{"notify"}}).want(t, 400, "M_MISSING_PARAM")
	put("bogus", "x", "", cond).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodDelete, pushPath("override", ".m.rule.master"), tok, nil).want(t, 400, "M_INVALID_PARAM")
	cs3Do(t, s, http.MethodDelete, pushPath("override", "nope"), tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodGet, pushPath("override", "nope"), tok, nil).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodPut, pushPath("override", "nope")+"/enabled", tok, map[string]any{"enabled": true}).want(t, 404, "M_NOT_FOUND")
	cs3Do(t, s, http.MethodPut, pushPath("override", "a")+"/enabled", tok, map[string]any{}).want(t, 400, "M_MISSING_PARAM")

	// enabled and actions, on a user rule and on server-default rules.
	cs3Do(t, s, http.MethodPut, pushPath("override", "a")+"/enabled", tok, map[string]any{"enabled": false}).ok(t)
	if r := cs3Do(t, s, http.MethodGet, pushPath("override", "a")+"/enabled", tok, nil).ok(t); r["enabled"] != false {
		t.Fatalf("a enabled %v", r)
	}
	cs3Do(t, s, http.MethodPut, pushPath("override", ".m.rule.master")+"/enabled", tok, map[string]any{"enabled": true}).ok(t)
	if r := cs3Do(t, s, http.MethodGet, pushPath("override", ".m.rule.master")+"/enabled", tok, nil).ok(t); r["enabled"] != true {
		t.Fatalf("master enabled %v", r)
	}
	cs3Do(t, s, http.MethodPut, pushPath("underride", ".m.rule.message")+"/actions", tok, map[string]any{"actions": []any{"notify", map[string]any{"set_tweak": "sound", "value": "ping"}}}).ok(t)
	if r := cs3Do(t, s, http.MethodGet, pushPath("underride", ".m.rule.message")+"/actions", tok, nil).ok(t); fmt.Sprint(r["actions"]) != "[notify map[set_tweak:sound value:ping]]" {
		t.Fatalf("message actions %v", r)
	}
	if r := cs3Do(t, s, http.MethodGet, pushPath("underride", ".m.rule.message"), tok, nil).ok(t); r["default"] != true {
		t.Fatalf("default rule stays default %v", r)
	}

	// Delete.
	cs3Do(t, s, http.MethodDelete, pushPath("override", "d"), tok, nil).ok(t)
	cs3Do(t, s, http.MethodGet, pushPath("override", "d"), tok, nil).want(t, 404, "M_NOT_FOUND")
	if got := pushRuleIDs(t, s, alice, "override"); fmt.Sprint(got[:4]) != "[.m.rule.master b a c]" {
		t.Fatalf("order after delete %v", got)
	}

	// The ruleset is mirrored to the m.push_rules account data.
	sync := rxSync(t, s, alice, url.Values{})
	var content map[string]any
	evs, _ := rxDig(sync, "account_data", "events").([]any)
	for _, e := range evs {
		if rxDig(e, "type") == "m.push_rules" {
			content, _ = rxDig(e, "content").(map[string]any)
		}
	}
	if content == nil {
		t.Fatalf("no m.push_rules in account data: %v", evs)
	}
	var ids []string
	for _, r := range rxDig(content, "global", "override").([]any) {
		ids = append(ids, rxDig(r, "rule_id").(string))
	}
	if fmt.Sprint(ids[:4]) != "[.m.rule.master b a c]" {
		t.Fatalf("account data override %v", ids)
	}
}

// gateway is a push gateway implementing the Push Gateway API: it records notifications and
// rejects the pushkeys in reject.
type gateway struct {
	mu     sync.Mutex
	got    []map[string]any
	reject map[string]bool
	srv    *httptest.Server
}

func newGateway(t *testing.T, reject ...string) *gateway {
	g := &gateway{reject: map[string]bool{}}
	for _, r := range reject {
		g.reject[r] = true
	}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_matrix/push/v1/notify" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Notification map[string]any `json:"notification"`
		}
		if err := json.Unmarshal(b, &body); err != nil || body.Notification == nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rejected := []string{}
		for _, d := range body.Notification["devices"].([]any) {
			if k := d.(map[string]any)["pushkey"].(string); g.reject[k] {
				rejected = append(rejected, k)
			}
		}
		g.mu.Lock()
		g.got = append(g.got, body.Notification)
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"rejected": rejected})
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// find returns the notification for pushkey and event, or nil.
func (g *gateway) find(pushkey, eventID string) map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.got {
		d := n["devices"].([]any)[0].(map[string]any)
		if d["pushkey"] == pushkey && n["event_id"] == eventID {
			return n
		}
	}
	return nil
}

func pushUnread(t *testing.T, s *testserver.Server, cli *mautrix.Client, room id.RoomID) (h, n any) {
	sync := rxSync(t, s, cli, url.Values{})
	u := rxDig(sync, "rooms", "join", room.String(), "unread_notifications")
	return rxDig(u, "highlight_count"), rxDig(u, "notification_count")
}

func TestPushCountsNotificationsPushers(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	bob := s.Register(t, "bob", false)
	gw := newGateway(t, "bad-key")
	notifyURL := gw.srv.URL + "/_matrix/push/v1/notify"
	pusher := func(key string, extra map[string]any) map[string]any {
		p := map[string]any{"kind": "http", "app_id": "org.example.app", "pushkey": key, "app_display_name": "Example",
			"device_display_name": "phone", "lang": "en", "data": map[string]any{"url": notifyURL, "format": "full", "k": "v"}}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	set := func(body any) cs3Resp {
		return cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/pushers/set", bob.AccessToken, body)
	}
	set(pusher("good-key", nil)).ok(t)
	set(pusher("bad-key", map[string]any{"append": true})).ok(t)
	// Validation.
	set(pusher("x", map[string]any{"data": map[string]any{"url": gw.srv.URL + "/notify"}})).want(t, 400, "M_INVALID_PARAM")
	set(pusher("x", map[string]any{"data": map[string]any{}})).want(t, 400, "M_MISSING_PARAM")
	set(pusher("x", map[string]any{"kind": "carrier-pigeon"})).want(t, 400, "M_INVALID_PARAM")
	set(map[string]any{"kind": "http", "app_id": "a"}).want(t, 400, "M_MISSING_PARAM")
	set(pusher("tmp", nil)).ok(t)
	set(map[string]any{"kind": nil, "app_id": "org.example.app", "pushkey": "tmp"}).ok(t) // kind null deletes
	pushers := func() []string {
		var keys []string
		for _, p := range cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/pushers", bob.AccessToken, nil).ok(t)["pushers"].([]any) {
			keys = append(keys, p.(map[string]any)["pushkey"].(string))
		}
		slices.Sort(keys)
		return keys
	}
	if got := pushers(); fmt.Sprint(got) != "[bad-key good-key]" {
		t.Fatalf("pushers %v", got)
	}

	if err := alice.SetDisplayName(cs3Ctx, "Alice"); err != nil {
		t.Fatal(err)
	}
	room := cs3CreateRoom(t, s, alice, map[string]any{"preset": "public_chat", "name": "Kitchen"})
	cs3R(bob.JoinRoomByID(cs3Ctx, room)).must(t)

	// A mention highlights; a plain message in a two-person room notifies.
	mention := rxSend(t, alice, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "bob: dinner?",
		"m.mentions": map[string]any{"user_ids": []any{bob.UserID.String()}}})
	plain := rxText(t, alice, room, "it's ready")
	pushEventually(t, "counts after two messages", func() string {
		if h, n := pushUnread(t, s, bob, room); h != float64(1) || n != float64(2) {
			return fmt.Sprintf("highlight %v notification %v", h, n)
		}
		return ""
	})
	// The sender's own events never count.
	if h, n := pushUnread(t, s, alice, room); h != float64(0) || n != float64(0) {
		t.Fatalf("alice counts %v %v", h, n)
	}

	// /notifications, newest first, paginated, only=highlight.
	list := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/notifications", bob.AccessToken, nil).ok(t)
	ns := list["notifications"].([]any)
	if len(ns) != 2 || rxDig(ns[0], "event", "event_id") != plain.String() || rxDig(ns[1], "event", "event_id") != mention.String() {
		t.Fatalf("notifications %v", list)
	}
	if rxDig(ns[1], "room_id") != room.String() || rxDig(ns[1], "read") != false || rxDig(ns[1], "ts") == nil {
		t.Fatalf("notification %v", ns[1])
	}
	if a := fmt.Sprint(rxDig(ns[1], "actions")); a != "[notify map[set_tweak:sound value:default] map[set_tweak:highlight]]" {
		t.Fatalf("mention actions %s", a)
	}
	hl := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/notifications?only=highlight", bob.AccessToken, nil).ok(t)["notifications"].([]any)
	if len(hl) != 1 || rxDig(hl[0], "event", "event_id") != mention.String() {
		t.Fatalf("highlights %v", hl)
	}
	p1 := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/notifications?limit=1", bob.AccessToken, nil).ok(t)
	next, _ := p1["next_token"].(string)
	if len(p1["notifications"].([]any)) != 1 || next == "" {
		t.Fatalf("page 1 %v", p1)
	}
	p2 := cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/notifications?limit=1&from="+next, bob.AccessToken, nil).ok(t)
	if n := p2["notifications"].([]any); len(n) != 1 || rxDig(n[0], "event", "event_id") != mention.String() {
		t.Fatalf("page 2 %v", p2)
	}

	// The gateway got the mention for the good pusher with the Push Gateway API body.
	var got map[string]any
	pushEventually(t, "gateway notification", func() string {
		if got = gw.find("good-key", mention.String()); got == nil {
			return "not delivered"
		}
		return ""
	})
	if got["room_id"] != room.String() || got["type"] != "m.room.message" || got["sender"] != alice.UserID.String() ||
		got["sender_display_name"] != "Alice" || got["room_name"] != "Kitchen" || got["prio"] != "high" ||
		rxDig(got, "counts", "unread") != float64(1) || rxDig(got, "content", "body") != "bob: dinner?" {
		t.Fatalf("gateway notification %v", got)
	}
	dev := got["devices"].([]any)[0].(map[string]any)
	if dev["app_id"] != "org.example.app" || dev["pushkey_ts"] == nil || fmt.Sprint(dev["data"]) != "map[format:full k:v]" ||
		rxDig(dev, "tweaks", "highlight") != true || rxDig(dev, "tweaks", "sound") != "default" {
		t.Fatalf("gateway device %v", dev)
	}
	// The gateway rejected bad-key: the pusher is gone, the good one stays.
	pushEventually(t, "rejected pusher removed", func() string {
		if got := pushers(); fmt.Sprint(got) != "[good-key]" {
			return fmt.Sprint(got)
		}
		return ""
	})

	// A read receipt on the newest event resets the counts and marks the notifications read.
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/rooms/"+cs3Esc(room.String())+"/receipt/m.read/"+cs3Esc(plain.String()), bob.AccessToken, map[string]any{}).ok(t)
	pushEventually(t, "counts after receipt", func() string {
		if h, n := pushUnread(t, s, bob, room); h != float64(0) || n != float64(0) {
			return fmt.Sprintf("highlight %v notification %v", h, n)
		}
		return ""
	})
	list = cs3Do(t, s, http.MethodGet, "/_matrix/client/v3/notifications", bob.AccessToken, nil).ok(t)
	if ns := list["notifications"].([]any); rxDig(ns[0], "read") != true || rxDig(ns[1], "read") != true {
		t.Fatalf("notifications after receipt %v", list)
	}
	// Counting resumes after the receipt.
	rxText(t, alice, room, "seconds?")
	pushEventually(t, "counts after a new message", func() string {
		if h, n := pushUnread(t, s, bob, room); h != float64(0) || n != float64(1) {
			return fmt.Sprintf("highlight %v notification %v", h, n)
		}
		return ""
	})

	// append=false (the default) takes the pushkey away from another user.
	cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/pushers/set", alice.AccessToken, pusher("good-key", nil)).ok(t)
	if got := pushers(); len(got) != 0 {
		t.Fatalf("bob's pushers after alice took the key %v", got)
	}
}
