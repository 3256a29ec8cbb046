package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// encryptionConn is Element X's encryption connection under another conn_id, with a since.
func encryptionConn(conn, since string) string {
	if since != "" {
		since = `, "since": "` + since + `"`
	}
	return strings.Replace(fmt.Sprintf(elementXEncryption, since), `"encryption"`, strconv.Quote(conn), 1)
}

// benchSlide sends one sliding sync request (timeout 0) of connection conn and returns its pos
// and the request body that follows it (to_device since = its next_batch).
func benchSlide(b *testing.B, srv *testserver.Server, token, pos, conn, body string) (string, string) {
	b.Helper()
	q := url.Values{"timeout": {"0"}}
	if pos != "" {
		q.Set("pos", pos)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+slidingPath+"?"+q.Encode(), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Pos        string `json:"pos"`
		Extensions struct {
			ToDevice struct {
				NextBatch string `json:"next_batch"`
			} `json:"to_device"`
		} `json:"extensions"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil {
		b.Fatalf("sliding sync: HTTP %d %s", resp.StatusCode, raw)
	}
	return out.Pos, encryptionConn(conn, out.Extensions.ToDevice.NextBatch)
}

// BenchmarkSlidingEncryptionWake is what one wake-up of Element X's encryption connection
// (to_device + e2ee, no lists) costs while a busy room fills the long-poll's window: building
// over the whole window (what every wake-up cost before sliding_wake.go) against building over
// what arrived since the last look (what a wake-up costs now, here nothing).
func BenchmarkSlidingEncryptionWake(b *testing.B) {
	srv := testserver.Start(b)
	alice := srv.Register(b, "alice", false)
	bob := srv.Register(b, "bob", false)
	busy, err := alice.CreateRoom(context.Background(), &mautrix.ReqCreateRoom{Preset: "public_chat"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bob.JoinRoomByID(context.Background(), busy.RoomID); err != nil {
		b.Fatal(err)
	}
	// Two connections, each built before the noise: one keeps asking from there (the whole
	// window), the other from its response after the noise (nothing new).
	before, wholeBody := benchSlide(b, srv, alice.AccessToken, "", "whole", encryptionConn("whole", ""))
	lastPos, lastBody := benchSlide(b, srv, alice.AccessToken, "", "last", encryptionConn("last", ""))
	for i := range 400 {
		if _, err := bob.SendText(context.Background(), busy.RoomID, fmt.Sprintf("noise %d", i)); err != nil {
			b.Fatal(err)
		}
	}
	lastPos, lastBody = benchSlide(b, srv, alice.AccessToken, lastPos, "last", lastBody)
	b.Run("whole-window-400", func(b *testing.B) {
		for b.Loop() {
			benchSlide(b, srv, alice.AccessToken, before, "whole", wholeBody)
		}
	})
	b.Run("since-last-look", func(b *testing.B) {
		for b.Loop() {
			benchSlide(b, srv, alice.AccessToken, lastPos, "last", lastBody)
		}
	})
}
