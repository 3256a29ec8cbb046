package sender

import (
	"encoding/json"
	"reflect"
	"testing"
)

// asMap decodes an EDU's content for comparison with the shape the spec gives.
func asMap(t *testing.T, e EDU) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Content, &m); err != nil {
		t.Fatalf("%s content: %v", e.Type, err)
	}
	return m
}

func jsonMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEDUShapes(t *testing.T) {
	status := "cooking"
	typing, err := Typing("!r:a.test", "@u:a.test", true)
	if err != nil {
		t.Fatal(err)
	}
	receipts, err := Receipts([]ReadReceipt{
		{RoomID: "!r:a.test", UserID: "@u:a.test", EventIDs: []string{"$e1"}, TS: 1700000000000},
		{RoomID: "!r:a.test", UserID: "@u:a.test", EventIDs: []string{"$e2"}, TS: 1700000000001, ThreadID: "$root"},
		{RoomID: "!r:a.test", UserID: "@v:a.test", EventIDs: []string{"$e3"}, TS: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	presence, err := Presence([]PresenceUpdate{{UserID: "@u:a.test", Presence: "online", StatusMsg: &status, LastActiveAgo: 5000, CurrentlyActive: true}})
	if err != nil {
		t.Fatal(err)
	}
	devList, err := DeviceList(DeviceListUpdate{UserID: "@u:a.test", DeviceID: "DEV", DisplayName: "Phone", StreamID: 6, PrevID: []int64{5},
		Keys: json.RawMessage(`{"user_id":"@u:a.test","device_id":"DEV","algorithms":["m.olm.v1.curve25519-aes-sha2"],"keys":{},"signatures":{}}`)})
	if err != nil {
		t.Fatal(err)
	}
	devDeleted, err := DeviceList(DeviceListUpdate{UserID: "@u:a.test", DeviceID: "OLD", StreamID: 7, Deleted: true})
	if err != nil {
		t.Fatal(err)
	}
	signing, err := SigningKeyUpdate("@u:a.test", json.RawMessage(`{"user_id":"@u:a.test","usage":["master"],"keys":{"ed25519:K":"K"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	toDevice, err := DirectToDevice("@u:a.test", "m.room_key_request", "msg1", map[string]map[string]json.RawMessage{
		"@w:b.test": {"*": json.RawMessage(`{"action":"request"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		edu  EDU
		typ  string
		eph  bool
		want string
	}{
		{typing, "m.typing", true, `{"room_id":"!r:a.test","user_id":"@u:a.test","typing":true}`},
		{receipts[0], "m.receipt", false, `{"!r:a.test":{"m.read":{
			"@u:a.test":{"data":{"ts":1700000000000},"event_ids":["$e1"]},
			"@v:a.test":{"data":{"ts":5},"event_ids":["$e3"]}}}}`},
		{receipts[1], "m.receipt", false, `{"!r:a.test":{"m.read":{
			"@u:a.test":{"data":{"ts":1700000000001,"thread_id":"$root"},"event_ids":["$e2"]}}}}`},
		{presence, "m.presence", true, `{"push":[{"user_id":"@u:a.test","presence":"online","status_msg":"cooking","last_active_ago":5000,"currently_active":true}]}`},
		{devList, "m.device_list_update", false, `{"user_id":"@u:a.test","device_id":"DEV","device_display_name":"Phone","stream_id":6,"prev_id":[5],
			"keys":{"user_id":"@u:a.test","device_id":"DEV","algorithms":["m.olm.v1.curve25519-aes-sha2"],"keys":{},"signatures":{}}}`},
		{devDeleted, "m.device_list_update", false, `{"user_id":"@u:a.test","device_id":"OLD","stream_id":7,"prev_id":[],"deleted":true}`},
		{signing, "m.signing_key_update", false, `{"user_id":"@u:a.test","master_key":{"user_id":"@u:a.test","usage":["master"],"keys":{"ed25519:K":"K"}}}`},
		{toDevice, "m.direct_to_device", false, `{"sender":"@u:a.test","type":"m.room_key_request","message_id":"msg1","messages":{"@w:b.test":{"*":{"action":"request"}}}}`},
	}
	if len(receipts) != 2 {
		t.Fatalf("%d receipt EDUs, want 2 (one user's two threads cannot share one)", len(receipts))
	}
	for _, c := range cases {
		if c.edu.Type != c.typ || c.edu.Ephemeral() != c.eph {
			t.Errorf("%s: type %s ephemeral %v", c.typ, c.edu.Type, c.edu.Ephemeral())
		}
		if got, want := asMap(t, c.edu), jsonMap(t, c.want); !reflect.DeepEqual(got, want) {
			t.Errorf("%s content\n got %s\nwant %s", c.typ, c.edu.Content, c.want)
		}
		wire, err := json.Marshal(c.edu)
		if err != nil {
			t.Fatal(err)
		}
		if m := jsonMap(t, string(wire)); m["edu_type"] != c.typ || m["content"] == nil {
			t.Errorf("%s on the wire: %s", c.typ, wire)
		}
	}
}

func TestEDUBuildersRejectBadInput(t *testing.T) {
	obj := json.RawMessage(`{}`)
	errs := map[string]error{}
	_, errs["typing bad room"] = Typing("r:a.test", "@u:a.test", true)
	_, errs["typing bad user"] = Typing("!r:a.test", "u", false)
	_, errs["receipt without event"] = Receipts([]ReadReceipt{{RoomID: "!r:a", UserID: "@u:a"}})
	_, errs["receipt bad event"] = Receipts([]ReadReceipt{{RoomID: "!r:a", UserID: "@u:a", EventIDs: []string{"e"}}})
	_, errs["presence empty"] = Presence(nil)
	_, errs["presence bad state"] = Presence([]PresenceUpdate{{UserID: "@u:a", Presence: "busy"}})
	_, errs["presence negative"] = Presence([]PresenceUpdate{{UserID: "@u:a", Presence: "online", LastActiveAgo: -1}})
	_, errs["device no id"] = DeviceList(DeviceListUpdate{UserID: "@u:a", StreamID: 1})
	_, errs["device no stream"] = DeviceList(DeviceListUpdate{UserID: "@u:a", DeviceID: "D"})
	_, errs["device deleted with keys"] = DeviceList(DeviceListUpdate{UserID: "@u:a", DeviceID: "D", StreamID: 1, Deleted: true, Keys: obj})
	_, errs["device keys not object"] = DeviceList(DeviceListUpdate{UserID: "@u:a", DeviceID: "D", StreamID: 1, Keys: json.RawMessage(`[]`)})
	_, errs["signing none"] = SigningKeyUpdate("@u:a", nil, nil)
	_, errs["signing bad"] = SigningKeyUpdate("@u:a", json.RawMessage(`"k"`), nil)
	_, errs["to-device no id"] = DirectToDevice("@u:a", "m.x", "", map[string]map[string]json.RawMessage{"@w:b": {"D": obj}})
	_, errs["to-device bad recipient"] = DirectToDevice("@u:a", "m.x", "1", map[string]map[string]json.RawMessage{"w": {"D": obj}})
	_, errs["to-device bad content"] = DirectToDevice("@u:a", "m.x", "1", map[string]map[string]json.RawMessage{"@w:b": {"D": json.RawMessage(`1`)}})
	_, errs["to-device no device"] = DirectToDevice("@u:a", "m.x", "1", map[string]map[string]json.RawMessage{"@w:b": {}})
	for name, err := range errs {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := ServerOf("@u:b.test:8448"); got != "b.test:8448" {
		t.Errorf("ServerOf with port: %q", got)
	}
	if got := ServerOf("u:b"); got != "" {
		t.Errorf("ServerOf of a non user ID: %q", got)
	}
}
