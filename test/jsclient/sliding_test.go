package jsclient_test

// sliding.mjs runs matrix-js-sdk's SlidingSync (MSC4186, Simplified Sliding Sync) against a
// real Hearth: the rooms come in recency order with names and last messages, and a new message
// arrives through the long-poll.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

type slidingExpect struct {
	RoomID id.RoomID `json:"room_id"`
	Name   string    `json:"name"`
	Last   string    `json:"last"`
}

type slidingResult struct {
	OK      bool        `json:"ok"`
	Stage   string      `json:"stage"`
	Error   string      `json:"error"`
	UserID  id.UserID   `json:"user_id"`
	Count   int         `json:"count"`
	Order   []id.RoomID `json:"order"`
	EventID id.EventID  `json:"event_id"`
}

func TestMatrixJSSDKSlidingSync(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		requireTool(t, "node is not installed: install Node.js 20 or newer, then run `make deps`")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "matrix-js-sdk", "lib", "sliding-sync.js")); err != nil {
		requireTool(t, "test/jsclient/node_modules/matrix-js-sdk is missing: run `make deps`")
	}

	srv := testserver.Start(t)
	const localpart = "jsslide"
	cli := srv.Register(t, localpart, false)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	// Three rooms, active in the order Garden, Garage, Attic: Attic is the most recent.
	var expect []slidingExpect
	for _, name := range []string{"Garden", "Garage", "Attic"} {
		r, err := cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: name})
		if err != nil {
			t.Fatalf("create room %s: %v", name, err)
		}
		last := "latest news from the " + strings.ToLower(name)
		for _, body := range []string{"hello " + name, last} {
			if _, err := cli.SendText(ctx, r.RoomID, body); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		expect = append([]slidingExpect{{RoomID: r.RoomID, Name: name, Last: last}}, expect...)
	}
	exp, _ := json.Marshal(expect)

	cmd := exec.CommandContext(ctx, node, "sliding.mjs", srv.URL, localpart, "password-"+localpart)
	cmd.Env = append(os.Environ(), "SLIDING_TIMEOUT_MS=60000", "SLIDING_EXPECT="+string(exp))
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("sliding.mjs ran %v", time.Since(start).Round(time.Millisecond))
	if runErr != nil {
		t.Fatalf("sliding.mjs: %v\nstdout:\n%s\nstderr:\n%s", runErr, stdout.String(), tail(stderr.String(), 4000))
	}
	var res slidingResult
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("sliding.mjs result line: %v\nstdout:\n%s", err, stdout.String())
	}
	if !res.OK {
		t.Fatalf("sliding.mjs: %+v\nstderr:\n%s", res, tail(stderr.String(), 4000))
	}
	if res.UserID != cli.UserID || res.Count != len(expect) || len(res.Order) != len(expect) || res.Order[0] != expect[0].RoomID {
		t.Errorf("sliding.mjs result %+v, want %d rooms for %s, %s first", res, len(expect), cli.UserID, expect[0].RoomID)
	}

	// The message the JS client sent is in the room, sent by it.
	ev, err := cli.GetEvent(ctx, expect[len(expect)-1].RoomID, res.EventID)
	if err != nil {
		t.Fatalf("GET the JS client's event: %v", err)
	}
	if ev.Sender != cli.UserID {
		t.Errorf("event sender %s, want %s", ev.Sender, cli.UserID)
	}
}
