package events

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// v1Room builds a small room of version rv in the v1 format: create, the creator's join,
// power levels. get answers the events by ID as the store's getter would (through Parse).
type v1Room struct {
	rv   id.RoomVersion
	s    Signer
	byID map[id.EventID][]byte
}

func (r *v1Room) get(ids []id.EventID) ([]*pdu.PDU, error) {
	out := make([]*pdu.PDU, len(ids))
	for i, e := range ids {
		if b, ok := r.byID[e]; ok {
			p, err := Parse(b)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
	}
	return out, nil
}

func (r *v1Room) build(t *testing.T, tp Template, prev, auth []id.EventID, depth int64) *Built {
	t.Helper()
	tp.RefHashes = RefHashesFrom(r.get)
	b, err := Build(r.rv, "!room:hearth.test", tp, prev, auth, depth, time.Now(), r.s)
	if err != nil {
		t.Fatalf("build %s: %v", tp.Type, err)
	}
	r.byID[b.ID] = b.JSON
	return b
}

func TestV1BuildParseEncodeAndAuth(t *testing.T) {
	for _, rv := range []id.RoomVersion{id.RoomV1, id.RoomV2} {
		t.Run(string(rv), func(t *testing.T) {
			r := &v1Room{rv: rv, s: signer(t), byID: map[id.EventID][]byte{}}
			empty, creator := "", "@a:hearth.test"
			create := r.build(t, Template{Type: "m.room.create", StateKey: &empty, Sender: id.UserID(creator), Content: jsontext.Value(`{"creator":"@a:hearth.test","room_version":"` + string(rv) + `"}`)}, nil, nil, 1)
			if !strings.HasPrefix(create.ID.String(), "$") || !strings.HasSuffix(create.ID.String(), ":hearth.test") {
				t.Fatalf("v1 event ID %q is not $opaque:server", create.ID)
			}
			if got := gjson.GetBytes(create.JSON, "event_id").Str; got != create.ID.String() {
				t.Fatalf("event_id field %q, want %q", got, create.ID)
			}
			join := r.build(t, Template{Type: "m.room.member", StateKey: &creator, Sender: id.UserID(creator), Content: jsontext.Value(`{"membership":"join"}`)}, []id.EventID{create.ID}, []id.EventID{create.ID}, 2)

			// The reference carries the create event's reference hash.
			ref := gjson.GetBytes(join.JSON, "prev_events.0")
			if !ref.IsArray() || ref.Get("0").Str != create.ID.String() {
				t.Fatalf("prev_events reference is %s", ref.Raw)
			}
			var cv pdu.RoomV1PDU
			if err := jsonv2.Unmarshal(create.JSON, &cv); err != nil {
				t.Fatal(err)
			}
			want, err := cv.GetReferenceHash(rv)
			if err != nil {
				t.Fatal(err)
			}
			var refs []pdu.V1EventReference
			if err := jsonv2.Unmarshal([]byte(gjson.GetBytes(join.JSON, "prev_events").Raw), &refs); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(refs[0].Hashes.SHA256, want[:]) {
				t.Fatalf("reference hash %x, want %x", refs[0].Hashes.SHA256, want)
			}

			// Signature and content hash verify under the v1 rules.
			var jv pdu.RoomV1PDU
			if err := jsonv2.Unmarshal(join.JSON, &jv); err != nil {
				t.Fatal(err)
			}
			pub := r.s.Key.Public().(ed25519.PublicKey)
			getKey := func(string, id.KeyID, time.Time) (id.SigningKey, time.Time, error) {
				return id.SigningKey(encodeKey(pub)), time.Now().Add(time.Hour), nil
			}
			if err := jv.VerifySignature(rv, "hearth.test", getKey); err != nil {
				t.Fatalf("v1 signature: %v", err)
			}
			if !jv.VerifyContentHash() {
				t.Fatal("v1 content hash does not verify")
			}

			// Parse converts; EventID and Encode give back the v1 identity and shape.
			p, err := Parse(join.JSON)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.PrevEvents) != 1 || p.PrevEvents[0] != create.ID || len(p.AuthEvents) != 1 || p.AuthEvents[0] != create.ID {
				t.Fatalf("converted references prev=%v auth=%v", p.PrevEvents, p.AuthEvents)
			}
			if eid, err := EventID(rv, p); err != nil || eid != join.ID {
				t.Fatalf("EventID = %s, %v; want %s", eid, err, join.ID)
			}
			enc, err := Encode(p)
			if err != nil {
				t.Fatal(err)
			}
			var ev pdu.RoomV1PDU
			if err := jsonv2.Unmarshal(enc, &ev); err != nil {
				t.Fatalf("re-encoded event is not v1: %v", err)
			}
			if err := ev.VerifySignature(rv, "hearth.test", getKey); err != nil {
				t.Fatalf("re-encoded event no longer verifies: %v", err)
			}

			// ParseLite reads the pair references.
			l, err := ParseLite(join.JSON)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.PrevEvents) != 1 || l.PrevEvents[0] != create.ID.String() {
				t.Fatalf("lite prev_events %v", l.PrevEvents)
			}

			// Auth: the creator's first join passes rule 5.3.1 (the create event's v1 ID);
			// a stranger cannot join a room without join rules (invite by default).
			if err := Authorize(rv, p, r.get); err != nil {
				t.Fatalf("creator's join refused: %v", err)
			}
			stranger := "@b:hearth.test"
			bad := r.build(t, Template{Type: "m.room.member", StateKey: &stranger, Sender: id.UserID(stranger), Content: jsontext.Value(`{"membership":"join"}`)}, []id.EventID{join.ID}, []id.EventID{create.ID}, 3)
			if err := Authorize(rv, bad.PDU, r.get); err == nil {
				t.Fatal("stranger's join without an invite was allowed")
			}
			msg := r.build(t, Template{Type: "m.room.message", Sender: id.UserID(creator), Content: jsontext.Value(`{"body":"hi","msgtype":"m.text"}`)}, []id.EventID{join.ID}, []id.EventID{create.ID, join.ID}, 3)
			if err := Authorize(rv, msg.PDU, r.get); err != nil {
				t.Fatalf("creator's message refused: %v", err)
			}

			// Redaction keeps the v1 shape and ID and drops the content.
			red, err := Redact(rv, msg.JSON)
			if err != nil {
				t.Fatal(err)
			}
			if gjson.GetBytes(red, "event_id").Str != msg.ID.String() || gjson.GetBytes(red, "content.body").Exists() || !gjson.GetBytes(red, "prev_events.0").IsArray() {
				t.Fatalf("redacted v1 event: %s", red)
			}
		})
	}
}

func TestV1ParseRejectsMissingIDAndKeepsV3(t *testing.T) {
	// A make_join template has no event_id: it parses, but has no ID yet.
	tmpl := []byte(`{"type":"m.room.member","state_key":"@a:x","sender":"@a:x","room_id":"!r:y","content":{"membership":"join"},"depth":3,"origin_server_ts":1,"prev_events":[["$p:y",{"sha256":"abc"}]],"auth_events":[["$c:y",{"sha256":"def"}]]}`)
	p, err := Parse(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EventID(id.RoomV1, p); err == nil {
		t.Fatal("an event without event_id got an ID")
	}
	// The template's hashes survive to the signed event.
	s := signer(t)
	eid, b, err := SignPDU(id.RoomV1, p, s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(eid.String(), ":hearth.test") || gjson.GetBytes(b, "prev_events.0.1.sha256").Str != "abc" {
		t.Fatalf("signed template: id %s, %s", eid, b)
	}
	// v3+ events are untouched: string references, hash IDs.
	sk := ""
	v3, err := Build(id.RoomV10, "!r:hearth.test", Template{Type: "m.room.create", StateKey: &sk, Sender: "@a:hearth.test", Content: jsontext.Value(`{"creator":"@a:hearth.test","room_version":"10"}`)}, nil, nil, 1, time.Now(), s)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(v3.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if IsV1(q) || gjson.GetBytes(v3.JSON, "event_id").Exists() {
		t.Fatalf("v10 event treated as v1: %s", v3.JSON)
	}
	if eid, err := EventID(id.RoomV10, q); err != nil || eid != v3.ID {
		t.Fatalf("v10 EventID = %s, %v; want %s", eid, err, v3.ID)
	}
	// Malformed references are refused, not mistaken for IDs.
	var refs EventRefs
	if err := refs.UnmarshalJSON([]byte(`[[1,2]]`)); err == nil {
		t.Fatal("numeric reference accepted")
	}
}
