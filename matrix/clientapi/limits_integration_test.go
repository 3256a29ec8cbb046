package clientapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/testserver"
)

func wantErr(t *testing.T, what string, st int, body map[string]any, wantSt int, code string) {
	t.Helper()
	if st != wantSt || body["errcode"] != code {
		t.Fatalf("%s: got %d %v, want %d %s", what, st, body, wantSt, code)
	}
}

func TestUnknownEndpointAndMethod(t *testing.T) {
	srv := testserver.Start(t)
	st, body := srv.Raw(t, http.MethodGet, "/_matrix/client/v3/no/such/thing", "", "")
	wantErr(t, "unknown endpoint", st, body, 404, "M_UNRECOGNIZED")
	st, body = srv.Raw(t, http.MethodDelete, "/_matrix/client/versions", "", "")
	wantErr(t, "wrong method", st, body, 405, "M_UNRECOGNIZED")
}

func TestCORSPreflight(t *testing.T) {
	srv := testserver.Start(t)
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/_matrix/client/v3/login", nil)
	req.Header.Set("Origin", "https://app.element.io")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestOversizedBodyAndEvent(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) { c.Limits.MaxBodyBytes = 200 << 10 })
	alice := srv.Register(t, "alice", false)
	room, err := alice.CreateRoom(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := alice.AccessToken
	// A body past the request limit.
	huge := `{"body":"` + strings.Repeat("x", 300<<10) + `"}`
	st, body := srv.Raw(t, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/t1", room.RoomID), tok, huge)
	wantErr(t, "body over limit", st, body, 413, "M_TOO_LARGE")
	// A body within the request limit but an event over the spec's 65,536 bytes.
	big := `{"msgtype":"m.text","body":"` + strings.Repeat("y", 70000) + `"}`
	st, body = srv.Raw(t, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/t2", room.RoomID), tok, big)
	wantErr(t, "event over 64 KiB", st, body, 413, "M_TOO_LARGE")
	// Nothing half-written: the room's timeline holds no message.
	msgs, err := alice.Messages(t.Context(), room.RoomID, "", "", 'b', nil, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range msgs.Chunk {
		if e.Type.Type == "m.room.message" {
			t.Fatalf("a rejected event was stored: %s", e.ID)
		}
	}
}

func TestRateLimitedSendAndLogin(t *testing.T) {
	srv := testserver.Start(t, func(c *config.Config) {
		c.Limits.RateLimit = true
		c.Limits.PerSecond = 0.5
		c.Limits.Burst = 3
	})
	alice := srv.Register(t, "alice", false)
	room, err := alice.CreateRoom(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	limited := false
	for i := 0; i < 10 && !limited; i++ {
		st, body := srv.Raw(t, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/r%d", room.RoomID, i), alice.AccessToken, `{"msgtype":"m.text","body":"hi"}`)
		if st == 429 {
			limited = true
			if body["errcode"] != "M_LIMIT_EXCEEDED" {
				t.Fatalf("429 without M_LIMIT_EXCEEDED: %v", body)
			}
			if ms, ok := body["retry_after_ms"].(float64); !ok || ms <= 0 {
				t.Fatalf("429 without a positive retry_after_ms: %v", body)
			}
		} else if st != 200 {
			t.Fatalf("send %d: %d %v", i, st, body)
		}
	}
	if !limited {
		t.Fatal("ten sends in a burst of three were never limited")
	}
	limited = false
	for i := 0; i < 10 && !limited; i++ {
		st, body := srv.Raw(t, http.MethodPost, "/_matrix/client/v3/login", "", `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"wrong"}`)
		if st == 429 {
			limited = body["errcode"] == "M_LIMIT_EXCEEDED"
		}
	}
	if !limited {
		t.Fatal("login attempts were never limited")
	}
}
