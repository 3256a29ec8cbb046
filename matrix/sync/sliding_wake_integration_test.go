package sync_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// dmOnlyConn is a connection whose one list holds the DMs (is_dm), with every extension on.
// %q is the conn_id, %s the to_device since (`, "since": "..."` or "").
const dmOnlyConn = `{
	"conn_id": %q,
	"lists": {
		"dms": {
			"ranges": [[0, 9]],
			"required_state": [["m.room.name", ""], ["m.room.member", "$LAZY"]],
			"filters": {"is_dm": true},
			"timeline_limit": 5
		}
	},
	"extensions": {
		"to_device": {"enabled": true %s},
		"e2ee": {"enabled": true},
		"account_data": {"enabled": true},
		"receipts": {"enabled": true},
		"typing": {"enabled": true},
		"io.element.msc4308.thread_subscriptions": {"enabled": true}
	}
}`

type ssToDevice struct {
	NextBatch string            `json:"next_batch"`
	Events    []json.RawMessage `json:"events"`
}

func toDeviceOf(t *testing.T, r ssResponse) ssToDevice {
	t.Helper()
	var td ssToDevice
	if err := json.Unmarshal(r.Extensions["to_device"], &td); err != nil || td.NextBatch == "" {
		t.Fatalf("to_device extension = %s (%v)", r.Extensions["to_device"], err)
	}
	return td
}

func dmConn(conn, since string) string {
	if since != "" {
		since = `, "since": "` + since + `"`
	}
	return fmt.Sprintf(dmOnlyConn, conn, since)
}

// slideAsync starts a sliding long-poll and returns the channel its answer arrives on.
func slideAsync(t *testing.T, srv *testserver.Server, token, pos string, body string) <-chan ssResponse {
	out := make(chan ssResponse, 1)
	go func() {
		code, r := slide(t, srv, token, pos, 20000, body)
		if code != http.StatusOK {
			r = ssResponse{Errcode: fmt.Sprintf("HTTP %d %s", code, r.Errcode)}
		}
		out <- r
	}()
	time.Sleep(300 * time.Millisecond) // parked before the noise starts
	return out
}

func awaitSlide(t *testing.T, ch <-chan ssResponse) ssResponse {
	t.Helper()
	select {
	case r := <-ch:
		if r.Errcode != "" {
			t.Fatalf("long-poll failed: %s", r.Errcode)
		}
		return r
	case <-time.After(25 * time.Second):
		t.Fatal("long-poll never returned")
	}
	return ssResponse{}
}

// noise sends messages to rooms outside the connection's list, tags one and sends a receipt
// there: each wakes alice's long-poll and builds nothing.
func noise(t *testing.T, alice *mautrix.Client, rooms []id.RoomID, n int, tag string) {
	t.Helper()
	var last id.EventID
	for i := range n {
		last = send(t, alice, rooms[i%len(rooms)], fmt.Sprintf("noise %d", i))
	}
	if err := alice.AddTag(ctx(t), rooms[0], event.RoomTag(tag), 0.1); err != nil {
		t.Fatal(err)
	}
	if err := alice.SendReceipt(ctx(t), rooms[(n-1)%len(rooms)], last, "m.read", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A parked sliding long-poll woken by changes outside its list reads only what arrived since
// its last look (sliding_wake.go), and answers exactly as a build over the whole window: the
// DM message it waits for and nothing else, the same rooms and extensions as a second
// connection that reads the whole window at once, a to-device message after empty wake-ups
// delivered once and then acknowledged, and account data of a listed room.
func TestSlidingLongPollWokenOutsideItsLists(t *testing.T) {
	srv, alice, bob, dm, named := slidingFamily(t)
	first := mustSlide(t, srv, alice.AccessToken, "", 0, dmConn("woken", ""))
	twin := mustSlide(t, srv, alice.AccessToken, "", 0, dmConn("twin", ""))
	if first.Lists["dms"].Count != 1 || len(first.Rooms) != 1 {
		t.Fatalf("dms list = %+v, rooms %v; want the DM alone", first.Lists, byBump(first))
	}
	since, twinSince := toDeviceOf(t, first).NextBatch, toDeviceOf(t, twin).NextBatch

	ch := slideAsync(t, srv, alice.AccessToken, first.Pos, dmConn("woken", since))
	noise(t, alice, named, 6, "u.noise")
	signal := send(t, bob, dm, "signal")
	r := awaitSlide(t, ch)
	if len(r.Rooms) != 1 {
		t.Fatalf("woken response rooms = %v, want the DM alone", byBump(r))
	}
	got := r.Rooms[dm.String()]
	if b := bodies(got.Timeline); len(b) != 1 || b[0] != "signal" || got.Timeline[0].EventID != signal.String() {
		t.Fatalf("DM timeline = %v, want [signal]", b)
	}
	if got.NumLive == nil || *got.NumLive != 1 || got.Limited {
		t.Errorf("DM num_live = %v limited = %v, want 1 and false", got.NumLive, got.Limited)
	}
	for _, ext := range []string{"account_data", "receipts", "typing", "io.element.msc4308.thread_subscriptions"} {
		if raw, ok := r.Extensions[ext]; ok {
			t.Errorf("woken response carries %s: %s (all of it was outside the list)", ext, raw)
		}
	}
	if td := toDeviceOf(t, r); len(td.Events) != 0 {
		t.Errorf("woken response carries to-device events: %s", r.Extensions["to_device"])
	}
	if strings.Contains(string(r.Extensions["e2ee"]), "device_lists") {
		t.Errorf("woken response carries device lists: %s", r.Extensions["e2ee"])
	}

	// The same window read at once by a connection that was never woken answers the same.
	whole := mustSlide(t, srv, alice.AccessToken, twin.Pos, 0, dmConn("twin", twinSince))
	if a, b := mustJSON(t, r.Lists), mustJSON(t, whole.Lists); a != b {
		t.Errorf("lists: woken %s, whole window %s", a, b)
	}
	if a, b := mustJSON(t, r.Rooms), mustJSON(t, whole.Rooms); a != b {
		t.Errorf("rooms: woken %s\nwhole window %s", a, b)
	}
	if a, b := mustJSON(t, r.Extensions), mustJSON(t, whole.Extensions); a != b {
		t.Errorf("extensions: woken %s\nwhole window %s", a, b)
	}

	// A to-device message after empty wake-ups: delivered once, then acknowledged.
	td := toDeviceOf(t, r)
	ch = slideAsync(t, srv, alice.AccessToken, r.Pos, dmConn("woken", td.NextBatch))
	noise(t, alice, named, 4, "u.more")
	body := fmt.Sprintf(`{"messages": {%q: {%q: {"after": "noise"}}}}`, alice.UserID, alice.DeviceID)
	if code, _ := srv.Raw(t, http.MethodPut, "/_matrix/client/v3/sendToDevice/org.example.test/wake1", bob.AccessToken, body); code != http.StatusOK {
		t.Fatalf("sendToDevice: HTTP %d", code)
	}
	r2 := awaitSlide(t, ch)
	td2 := toDeviceOf(t, r2)
	if len(td2.Events) != 1 || !strings.Contains(string(td2.Events[0]), "noise") || len(r2.Rooms) != 0 {
		t.Fatalf("woken by a to-device message: to_device %s, rooms %v", r2.Extensions["to_device"], byBump(r2))
	}
	// A retry of that request (the answer was lost) gets the message again: nothing was
	// acknowledged beyond the since token it names.
	retry := mustSlide(t, srv, alice.AccessToken, r.Pos, 0, dmConn("woken", td.NextBatch))
	if len(toDeviceOf(t, retry).Events) != 1 {
		t.Fatalf("retried request lost the to-device message: %s", retry.Extensions["to_device"])
	}
	again := mustSlide(t, srv, alice.AccessToken, retry.Pos, 0, dmConn("woken", toDeviceOf(t, retry).NextBatch))
	if n := len(toDeviceOf(t, again).Events); n != 0 {
		t.Fatalf("acknowledged to-device message delivered again: %d", n)
	}

	// Account data of the listed room after empty wake-ups: that alone comes down.
	ch = slideAsync(t, srv, alice.AccessToken, again.Pos, dmConn("woken", toDeviceOf(t, again).NextBatch))
	noise(t, alice, named, 4, "u.last")
	if err := alice.AddTag(ctx(t), dm, "m.favourite", 0.5); err != nil {
		t.Fatal(err)
	}
	r3 := awaitSlide(t, ch)
	var ad struct {
		Global []json.RawMessage `json:"global"`
		Rooms  map[string][]struct {
			Type string `json:"type"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(r3.Extensions["account_data"], &ad); err != nil {
		t.Fatalf("account_data = %s: %v", r3.Extensions["account_data"], err)
	}
	if len(ad.Global) != 0 || len(ad.Rooms) != 1 || len(ad.Rooms[dm.String()]) != 1 || ad.Rooms[dm.String()][0].Type != "m.tag" {
		t.Fatalf("account_data = %s, want the DM's m.tag alone", r3.Extensions["account_data"])
	}
	if len(r3.Rooms) != 0 {
		t.Errorf("rooms = %v, want none", byBump(r3))
	}

	// Device lists after empty wake-ups: carol, invited to an unlisted room (a wake-up with
	// nothing for alice), joins it; only the e2ee extension has news, the same as for a
	// connection reading the whole window at once.
	carol := srv.Register(t, "carol", false)
	td3 := toDeviceOf(t, r3).NextBatch
	twin = mustSlide(t, srv, alice.AccessToken, "", 0, dmConn("twin2", ""))
	twinSince = toDeviceOf(t, twin).NextBatch
	ch = slideAsync(t, srv, alice.AccessToken, r3.Pos, dmConn("woken", td3))
	noise(t, alice, named, 3, "u.carol")
	if _, err := alice.InviteUser(ctx(t), named[1], &mautrix.ReqInviteUser{UserID: carol.UserID}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := carol.JoinRoomByID(ctx(t), named[1]); err != nil {
		t.Fatal(err)
	}
	r4 := awaitSlide(t, ch)
	var e2ee struct {
		DeviceLists struct {
			Changed []string `json:"changed"`
		} `json:"device_lists"`
	}
	_ = json.Unmarshal(r4.Extensions["e2ee"], &e2ee)
	if len(r4.Rooms) != 0 || len(e2ee.DeviceLists.Changed) != 1 || e2ee.DeviceLists.Changed[0] != carol.UserID.String() {
		t.Fatalf("woken by carol's join: rooms %v, e2ee %s; want device_lists.changed = [carol] alone", byBump(r4), r4.Extensions["e2ee"])
	}
	whole = mustSlide(t, srv, alice.AccessToken, twin.Pos, 0, dmConn("twin2", twinSince))
	if a, b := mustJSON(t, r4.Extensions), mustJSON(t, whole.Extensions); a != b {
		t.Errorf("extensions: woken %s\nwhole window %s", a, b)
	}
}
