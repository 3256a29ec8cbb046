package clientapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Helpers shared by the integration tests of the rest of the single-server client-server API
// (upgrades, knocking, timestamp_to_event, summaries, reports, OpenID, login tokens, refresh
// tokens, the user directory and the public room list). Prefixed cs3 to stay clear of the
// other test files of the package.

var cs3Ctx = context.Background()

// cs3Resp is a raw answer: status and decoded object.
type cs3Resp struct {
	status int
	body   map[string]any
}

// cs3Do sends body (a string is sent as is, anything else as JSON) with an optional token.
func cs3Do(t *testing.T, s *testserver.Server, method, path, token string, body any) cs3Resp {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		r = strings.NewReader(string(raw))
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
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return cs3Resp{resp.StatusCode, m}
}

// want fails unless the answer is the given status and errcode.
func (r cs3Resp) want(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status || r.body["errcode"] != code {
		t.Fatalf("want %d %s, got %d %v", status, code, r.status, r.body)
	}
}

// ok fails unless the answer is 200 and returns the body.
func (r cs3Resp) ok(t *testing.T) map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200, got %d %v", r.status, r.body)
	}
	return r.body
}

// cs3WantErr checks a mautrix client error's status and errcode.
func cs3WantErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %d %s, got success", status, code)
	}
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.Response == nil {
		t.Fatalf("want %d %s, got %v", status, code, err)
	}
	got := ""
	if he.RespError != nil {
		got = he.RespError.ErrCode
	}
	if he.Response.StatusCode != status || got != code {
		t.Fatalf("want %d %s, got %d %s (%s)", status, code, he.Response.StatusCode, got, he.ResponseBody)
	}
}

// cs3Result carries a client call's result to must: cs3R(cli.X(...)).must(t).
type cs3Result[T any] struct {
	v   T
	err error
}

func cs3R[T any](v T, err error) cs3Result[T] { return cs3Result[T]{v, err} }

func (r cs3Result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatalf("unexpected error: %v", r.err)
	}
	return r.v
}

func cs3Esc(s string) string { return url.PathEscape(s) }

// cs3State reads a state event's content (nil when the room has none).
func cs3State(t *testing.T, cli *mautrix.Client, roomID id.RoomID, typ, sk string) map[string]any {
	t.Helper()
	var out map[string]any
	err := cli.StateEvent(cs3Ctx, roomID, event.Type{Type: typ, Class: event.StateEventType}, sk, &out)
	var he mautrix.HTTPError
	if errors.As(err, &he) && he.Response != nil && he.Response.StatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("state %s/%q of %s: %v", typ, sk, roomID, err)
	}
	return out
}

// cs3SetState sends a state event and fails on error.
func cs3SetState(t *testing.T, cli *mautrix.Client, roomID id.RoomID, typ, sk string, content any) id.EventID {
	t.Helper()
	resp, err := cli.SendStateEvent(cs3Ctx, roomID, event.Type{Type: typ, Class: event.StateEventType}, sk, content)
	if err != nil {
		t.Fatalf("send %s in %s: %v", typ, roomID, err)
	}
	return resp.EventID
}

// cs3CreateRoom creates a room from a raw createRoom body.
func cs3CreateRoom(t *testing.T, s *testserver.Server, cli *mautrix.Client, body map[string]any) id.RoomID {
	t.Helper()
	m := cs3Do(t, s, http.MethodPost, "/_matrix/client/v3/createRoom", cli.AccessToken, body).ok(t)
	return id.RoomID(m["room_id"].(string))
}

// cs3Num reads a JSON number field as an int64 (-1 when absent).
func cs3Num(m map[string]any, k string) int64 {
	if f, ok := m[k].(float64); ok {
		return int64(f)
	}
	return -1
}
