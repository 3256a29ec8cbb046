package events

import (
	"crypto/ed25519"
	"encoding/json/jsontext"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

func signer(t *testing.T) Signer {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Signer{ServerName: "hearth.test", KeyID: "ed25519:test", Key: priv}
}

func TestBuildSignsAndDerivesV12RoomID(t *testing.T) {
	s := signer(t)
	sk := ""
	b, err := Build(id.RoomV12, "", Template{Type: "m.room.create", StateKey: &sk, Sender: "@a:hearth.test", Content: jsontext.Value(`{"room_version":"12"}`)}, nil, nil, 1, time.Now(), s)
	if err != nil {
		t.Fatal(err)
	}
	rid, err := RoomIDFor(b.PDU)
	if err != nil {
		t.Fatal(err)
	}
	if "$"+string(rid[1:]) != string(b.ID) {
		t.Fatalf("room id %s does not match create event %s", rid, b.ID)
	}
	pub := s.Key.Public().(ed25519.PublicKey)
	getKey := func(string, id.KeyID, time.Time) (id.SigningKey, time.Time, error) {
		return id.SigningKey(encodeKey(pub)), time.Now().Add(time.Hour), nil
	}
	p, err := Parse(b.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifySignature(id.RoomV12, "hearth.test", getKey); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if !p.VerifyContentHash() {
		t.Fatal("content hash does not verify")
	}
	if err := Authorize(id.RoomV12, p, func([]id.EventID) ([]*pdu.PDU, error) { return nil, nil }); err != nil {
		t.Fatalf("create event not authorised: %v", err)
	}
}

func TestOversizedEventRejected(t *testing.T) {
	big := `{"body":"` + strings.Repeat("x", MaxPDUSize) + `"}`
	_, err := Build(id.RoomV11, "!r:hearth.test", Template{Type: "m.room.message", Sender: "@a:hearth.test", Content: jsontext.Value(big)}, nil, nil, 2, time.Now(), signer(t))
	if err == nil || !strings.Contains(err.Error(), "M_TOO_LARGE") {
		t.Fatalf("err = %v, want M_TOO_LARGE", err)
	}
}

func TestAuthorizeRejectsNonMember(t *testing.T) {
	s := signer(t)
	sk := ""
	create, err := Build(id.RoomV11, "!r:hearth.test", Template{Type: "m.room.create", StateKey: &sk, Sender: "@a:hearth.test", Content: jsontext.Value(`{"room_version":"11"}`)}, nil, nil, 1, time.Now(), s)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Build(id.RoomV11, "!r:hearth.test", Template{Type: "m.room.message", Sender: "@b:hearth.test", Content: jsontext.Value(`{"body":"hi"}`)}, []id.EventID{create.ID}, []id.EventID{create.ID}, 2, time.Now(), s)
	if err != nil {
		t.Fatal(err)
	}
	err = Authorize(id.RoomV11, msg.PDU, func(ids []id.EventID) ([]*pdu.PDU, error) {
		return []*pdu.PDU{create.PDU}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "M_FORBIDDEN") {
		t.Fatalf("non-member message authorised: %v", err)
	}
}

func TestRedactKeepsSignatureFields(t *testing.T) {
	s := signer(t)
	msg, err := Build(id.RoomV11, "!r:hearth.test", Template{Type: "m.room.message", Sender: "@a:hearth.test", Content: jsontext.Value(`{"body":"secret"}`)}, nil, nil, 2, time.Now(), s)
	if err != nil {
		t.Fatal(err)
	}
	red, err := Redact(id.RoomV11, msg.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(red), "secret") {
		t.Fatal("redacted event still holds content")
	}
	p, err := Parse(red)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Signatures) == 0 || p.Hashes == nil {
		t.Fatal("redaction dropped signatures or hashes")
	}
	if eid, _ := p.GetEventID(id.RoomV11); eid != msg.ID {
		t.Fatalf("redaction changed the event ID: %s != %s", eid, msg.ID)
	}
}
