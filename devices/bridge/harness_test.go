package bridge_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/control"
	"github.com/hearth-home/hearth/devices"
	"github.com/hearth-home/hearth/devices/bridge"
)

// fakeAdapter is a devices.Adapter driven by the test: it announces what it is given and
// records the commands the bridge sends it.
type fakeAdapter struct {
	name string
	mu   sync.Mutex
	sink devices.Sink
	cmds []cmdRecord
	got  chan struct{}
	fail error // returned by Command when set
}

type cmdRecord struct {
	ID  string
	Cmd devices.Command
}

func newFakeAdapter(name string) *fakeAdapter {
	return &fakeAdapter{name: name, got: make(chan struct{}, 100)}
}

func (a *fakeAdapter) Name() string { return a.name }

func (a *fakeAdapter) Run(ctx context.Context, sink devices.Sink) error {
	a.mu.Lock()
	a.sink = sink
	a.mu.Unlock()
	<-ctx.Done()
	return nil
}

func (a *fakeAdapter) Command(_ context.Context, devID string, c devices.Command) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	if c.Action == "flip" { // like the drone adapter: some actions need the user's yes first
		return needConfirm{}
	}
	a.cmds = append(a.cmds, cmdRecord{devID, c})
	a.got <- struct{}{}
	return nil
}

func (a *fakeAdapter) commands() []cmdRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]cmdRecord(nil), a.cmds...)
}

// waitSink waits until Run has been called.
func (a *fakeAdapter) waitSink(t *testing.T) devices.Sink {
	t.Helper()
	var s devices.Sink
	eventually(t, "adapter running", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		s = a.sink
		return s != nil
	})
	return s
}

// house is a running appliance with the device bridge on and an admin user.
type house struct {
	a      *appliance.Appliance
	url    string
	server string
	admin  control.Admin
	cancel context.CancelFunc
	done   chan error
}

func startHouse(t *testing.T, adjust ...func(*config.Config)) *house {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.Registration.MinPasswordLength = 0
	cfg.Limits.RateLimit = false
	cfg.Devices.Enabled = true
	cfg.Devices.MinInterval = 300 * time.Millisecond
	cfg.Devices.MinDelta = 0.5
	for _, f := range adjust {
		f(&cfg)
	}
	level := slog.LevelError
	if os.Getenv("HEARTH_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	a, err := appliance.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &house{a: a, url: "http://" + a.ClientAddr(), server: cfg.ServerName, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	eventually(t, "server up", func() bool {
		resp, err := http.Get(h.url + "/_matrix/client/versions")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	h.admin, err = control.Dial(control.SocketPath(cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// stop shuts the appliance down (idempotent).
func (h *house) stop(t *testing.T) {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("appliance: %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Error("appliance did not stop")
	}
}

// user adds a user through the control socket and logs in.
func (h *house) user(t *testing.T, name string, admin bool) *mautrix.Client {
	t.Helper()
	ctx := context.Background()
	if _, err := h.admin.AddUser(ctx, name, "pw-"+name, admin); err != nil {
		t.Fatal(err)
	}
	cli, err := mautrix.NewClient(h.url, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Login(ctx, &mautrix.ReqLogin{
		Type:             mautrix.AuthTypePassword,
		Identifier:       mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: name},
		Password:         "pw-" + name,
		StoreCredentials: true,
	}); err != nil {
		t.Fatal(err)
	}
	return cli
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// join waits for an invite to room and accepts it.
func join(t *testing.T, cli *mautrix.Client, room id.RoomID) {
	t.Helper()
	eventually(t, string(cli.UserID)+" joined "+string(room), func() bool {
		_, err := cli.JoinRoomByID(context.Background(), room)
		return err == nil
	})
}

// deviceState reads the org.hearth.device state event of a device.
func deviceState(t *testing.T, cli *mautrix.Client, room id.RoomID, devID string) map[string]any {
	t.Helper()
	var out map[string]any
	if err := cli.StateEvent(context.Background(), room, event.Type{Type: "org.hearth.device", Class: event.StateEventType}, devID, &out); err != nil {
		return nil
	}
	return out
}

// threadReplies returns the bodies (and raw contents) of the thread replies to an event.
func threadReplies(t *testing.T, cli *mautrix.Client, room id.RoomID, evt id.EventID) []*event.Event {
	t.Helper()
	resp, err := cli.GetRelations(context.Background(), room, evt, &mautrix.ReqGetRelations{RelationType: event.RelThread})
	if err != nil {
		t.Fatalf("relations: %v", err)
	}
	return resp.Chunk
}

// waitReply waits for the bridge's thread reply to evt and returns its body and result field.
func waitReply(t *testing.T, cli *mautrix.Client, room id.RoomID, evt id.EventID) (string, map[string]any) {
	t.Helper()
	var body string
	var result map[string]any
	eventually(t, "a reply to "+string(evt), func() bool {
		for _, r := range threadReplies(t, cli, room, evt) {
			var c struct {
				Body   string         `json:"body"`
				Result map[string]any `json:"org.hearth.device.result"`
			}
			if err := json.Unmarshal(r.Content.VeryRaw, &c); err == nil && c.Body != "" {
				body, result = c.Body, c.Result
				return true
			}
		}
		return false
	})
	return body, result
}

func sendText(t *testing.T, cli *mautrix.Client, room id.RoomID, text string) id.EventID {
	t.Helper()
	resp, err := cli.SendText(context.Background(), room, text)
	if err != nil {
		t.Fatalf("send %q: %v", text, err)
	}
	return resp.EventID
}

// notices returns the reading notices in room, oldest first.
func notices(t *testing.T, cli *mautrix.Client, room id.RoomID, devID string) []map[string]any {
	t.Helper()
	resp, err := cli.Messages(context.Background(), room, "", "", mautrix.DirectionBackward, nil, 200)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for i := len(resp.Chunk) - 1; i >= 0; i-- {
		evt := resp.Chunk[i]
		if evt.Type != event.EventMessage {
			continue
		}
		var c map[string]any
		_ = json.Unmarshal(evt.Content.VeryRaw, &c)
		if r, ok := c["org.hearth.device.reading"].(map[string]any); ok && r["device"] == devID {
			out = append(out, c)
		}
	}
	return out
}

func contains(s, sub string) bool { return strings.Contains(strings.ToLower(s), strings.ToLower(sub)) }

func bridgePuppet(devID string) string { return bridge.PuppetLocalpart(devID) }

type needConfirm struct{}

func (needConfirm) Error() string         { return "flip needs confirmation" }
func (needConfirm) ConfirmPrompt() string { return "Flip the drone?" }
