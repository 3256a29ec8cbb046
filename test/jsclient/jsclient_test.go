// Package jsclient_test runs matrix-js-sdk, the SDK behind Element Web, against a real Hearth:
// smoke.mjs logs in with a password, creates a room, sends a message and waits for it through
// /sync. The npm packages come from `make deps` (npm ci in this directory).
package jsclient_test

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

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// smokeResult is the JSON line smoke.mjs prints on stdout.
type smokeResult struct {
	OK      bool       `json:"ok"`
	Stage   string     `json:"stage"`
	Error   string     `json:"error"`
	UserID  id.UserID  `json:"user_id"`
	RoomID  id.RoomID  `json:"room_id"`
	EventID id.EventID `json:"event_id"`
}

// requireTool fails in CI, where `make deps` must have provided everything, and skips
// elsewhere so that `go test ./...` works on a machine without Node.
func requireTool(t *testing.T, msg string) {
	t.Helper()
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func TestMatrixJSSDKSmoke(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		requireTool(t, "node is not installed: install Node.js 20 or newer, then run `make deps`")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "matrix-js-sdk", "package.json")); err != nil {
		requireTool(t, "test/jsclient/node_modules/matrix-js-sdk is missing: run `make deps`")
	}

	srv := testserver.Start(t)
	const localpart = "jsuser"
	cli := srv.Register(t, localpart, false)
	password := "password-" + localpart // testserver.Register's password

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "smoke.mjs", srv.URL, localpart, password)
	cmd.Env = append(os.Environ(), "SMOKE_TIMEOUT_MS=60000")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("smoke.mjs ran %v", time.Since(start).Round(time.Millisecond))
	if runErr != nil {
		t.Fatalf("smoke.mjs: %v\nstdout:\n%s\nstderr:\n%s", runErr, stdout.String(), tail(stderr.String(), 4000))
	}

	var res smokeResult
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("smoke.mjs result line: %v\nstdout:\n%s", err, stdout.String())
	}
	if !res.OK || res.RoomID == "" || res.EventID == "" {
		t.Fatalf("smoke.mjs result: %+v\nstderr:\n%s", res, tail(stderr.String(), 4000))
	}
	if res.UserID != cli.UserID {
		t.Errorf("js client logged in as %s, want %s", res.UserID, cli.UserID)
	}

	// The event the JS client sent and saw through sync is readable by another client of the
	// same user.
	ev, err := cli.GetEvent(ctx, res.RoomID, res.EventID)
	if err != nil {
		t.Fatalf("GET /rooms/%s/event/%s: %v", res.RoomID, res.EventID, err)
	}
	if ev.ID != res.EventID || ev.RoomID != res.RoomID {
		t.Errorf("event is %s in %s, want %s in %s", ev.ID, ev.RoomID, res.EventID, res.RoomID)
	}
	if ev.Type.Type != "m.room.message" || ev.Sender != cli.UserID {
		t.Errorf("event type %q sender %s, want m.room.message from %s", ev.Type.Type, ev.Sender, cli.UserID)
	}
	if body, _ := ev.Content.Raw["body"].(string); !strings.HasPrefix(body, "hello from matrix-js-sdk") {
		t.Errorf("event body %q, want the smoke test's message", body)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
