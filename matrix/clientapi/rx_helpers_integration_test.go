package clientapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Helpers of the relations, threads, ignored-users and presence tests (prefix rx).

func rxCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// rxDo performs a request with a JSON body (nil for none) and decodes the object answered.
func rxDo(t *testing.T, s *testserver.Server, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, s.URL+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// rxOK is rxDo that must answer 200.
func rxOK(t *testing.T, s *testserver.Server, method, path, token string, body any) map[string]any {
	t.Helper()
	st, m := rxDo(t, s, method, path, token, body)
	if st != http.StatusOK {
		t.Fatalf("%s %s: %d %v", method, path, st, m)
	}
	return m
}

// rxWant checks an error answer.
func rxWant(t *testing.T, what string, status int, body map[string]any, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || body["errcode"] != code {
		t.Fatalf("%s: want %d %s, got %d %v", what, wantStatus, code, status, body)
	}
}

func rxEsc(s string) string { return url.PathEscape(s) }

// rxSend sends a message event with arbitrary content.
func rxSend(t *testing.T, cli *mautrix.Client, room id.RoomID, typ string, content map[string]any) id.EventID {
	t.Helper()
	resp, err := cli.SendMessageEvent(rxCtx(t), room, event.Type{Type: typ, Class: event.MessageEventType}, content)
	if err != nil {
		t.Fatalf("send %s: %v", typ, err)
	}
	return resp.EventID
}

func rxText(t *testing.T, cli *mautrix.Client, room id.RoomID, body string) id.EventID {
	t.Helper()
	return rxSend(t, cli, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": body})
}

// rxRel sends an m.room.message relating to parent.
func rxRel(t *testing.T, cli *mautrix.Client, room id.RoomID, relType string, parent id.EventID, body string) id.EventID {
	t.Helper()
	return rxSend(t, cli, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": body,
		"m.relates_to": map[string]any{"rel_type": relType, "event_id": parent}})
}

// rxEdit sends a replacement of parent.
func rxEdit(t *testing.T, cli *mautrix.Client, room id.RoomID, parent id.EventID, body string) id.EventID {
	t.Helper()
	return rxSend(t, cli, room, "m.room.message", map[string]any{"msgtype": "m.text", "body": "* " + body,
		"m.new_content": map[string]any{"msgtype": "m.text", "body": body},
		"m.relates_to":  map[string]any{"rel_type": "m.replace", "event_id": parent}})
}

// rxRoom creates a public room of alice's that the others join.
func rxRoom(t *testing.T, alice *mautrix.Client, others ...*mautrix.Client) id.RoomID {
	t.Helper()
	r, err := alice.CreateRoom(rxCtx(t), &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		t.Fatalf("create room: %v", err)
	}
	for _, o := range others {
		if _, err := o.JoinRoomByID(rxCtx(t), r.RoomID); err != nil {
			t.Fatalf("join: %v", err)
		}
	}
	return r.RoomID
}

// rxGetEvent fetches one event as JSON.
func rxGetEvent(t *testing.T, s *testserver.Server, cli *mautrix.Client, room id.RoomID, ev id.EventID) map[string]any {
	t.Helper()
	return rxOK(t, s, http.MethodGet, "/_matrix/client/v3/rooms/"+rxEsc(room.String())+"/event/"+rxEsc(ev.String()), cli.AccessToken, nil)
}

// rxDig walks nested objects: rxDig(m, "unsigned", "m.relations").
func rxDig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// rxIDs lists the event_id of each event in a chunk.
func rxIDs(v any) []string {
	list, _ := v.([]any)
	out := []string{}
	for _, e := range list {
		if s, ok := rxDig(e, "event_id").(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func rxEqual(t *testing.T, what string, got []string, want ...id.EventID) {
	t.Helper()
	ws := make([]string, len(want))
	for i, w := range want {
		ws[i] = w.String()
	}
	if fmt.Sprint(got) != fmt.Sprint(ws) {
		t.Fatalf("%s: got %v, want %v", what, got, ws)
	}
}

// rxSync performs one /sync with a query (since, filter, set_presence, timeout...).
func rxSync(t *testing.T, s *testserver.Server, cli *mautrix.Client, q url.Values) map[string]any {
	t.Helper()
	if !q.Has("timeout") {
		q.Set("timeout", "0")
	}
	return rxOK(t, s, http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), cli.AccessToken, nil)
}

// rxTimeline is the timeline of a joined room in a sync answer.
func rxTimeline(sync map[string]any, room id.RoomID) []any {
	l, _ := rxDig(sync, "rooms", "join", room.String(), "timeline", "events").([]any)
	return l
}
