package keys

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

const server = "hearth.test"

func newService(t *testing.T) *Service {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := New(st, server, nil)
	t.Cleanup(s.Close)
	return s
}

// addDevice creates a device record, as login would.
func addDevice(t *testing.T, s *Service, user id.UserID, dev string) {
	t.Helper()
	err := s.st.Update(func(txn *store.Txn) error {
		return txn.PutDevice(user.String(), &store.DeviceRecord{ID: dev, DisplayName: "dev " + dev})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func errCode(err error) string {
	if me, ok := merr.As(err); ok {
		return me.Code
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func raw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func TestClaimConsumesOneTimeKeysThenFallback(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	bob := id.UserID("@bob:" + server)
	addDevice(t, s, bob, "BOBDEV")

	// Two uploads: keys of the first are claimed first, whatever their IDs.
	c, err := s.Upload(ctx, bob, "BOBDEV", &UploadRequest{OneTimeKeys: map[string]json.RawMessage{
		"signed_curve25519:ZZZ": raw(map[string]any{"key": "k-first"}),
	}})
	if err != nil || c[AlgSignedCurve25519] != 1 {
		t.Fatalf("upload 1: %v %v", c, err)
	}
	c, err = s.Upload(ctx, bob, "BOBDEV", &UploadRequest{
		OneTimeKeys: map[string]json.RawMessage{
			"signed_curve25519:AAA": raw(map[string]any{"key": "k-second"}),
			"signed_curve25519:ZZZ": raw(map[string]any{"key": "k-first"}), // identical re-upload
		},
		FallbackKeys: map[string]json.RawMessage{"signed_curve25519:FB1": raw(map[string]any{"key": "k-fallback", "fallback": true})},
	})
	if err != nil || c[AlgSignedCurve25519] != 2 {
		t.Fatalf("upload 2: %v %v", c, err)
	}
	// A different key under a used ID is refused.
	_, err = s.Upload(ctx, bob, "BOBDEV", &UploadRequest{OneTimeKeys: map[string]json.RawMessage{
		"signed_curve25519:AAA": raw(map[string]any{"key": "other"}),
	}})
	if errCode(err) != "M_INVALID_PARAM" {
		t.Fatalf("conflicting re-upload: %v", err)
	}

	claim := func() string {
		t.Helper()
		r, err := s.Claim(ctx, map[string]map[string]string{bob.String(): {"BOBDEV": AlgSignedCurve25519}})
		if err != nil {
			t.Fatal(err)
		}
		for name := range r.OneTimeKeys[bob.String()]["BOBDEV"] {
			return name
		}
		return ""
	}
	unused := func() []string {
		var out []string
		_ = s.st.View(func(txn *store.Txn) error {
			out, _ = s.UnusedFallbackKeyTypes(txn, bob.String(), "BOBDEV")
			return nil
		})
		return out
	}
	if got := unused(); !slices.Equal(got, []string{AlgSignedCurve25519}) {
		t.Fatalf("unused fallback types before claims: %v", got)
	}
	for i, want := range []string{"signed_curve25519:ZZZ", "signed_curve25519:AAA", "signed_curve25519:FB1", "signed_curve25519:FB1"} {
		if got := claim(); got != want {
			t.Fatalf("claim %d: got %q, want %q", i, got, want)
		}
	}
	if got := unused(); got == nil || len(got) != 0 {
		t.Fatalf("unused fallback types after the fallback was claimed: %#v", got)
	}
	var counts map[string]int
	_ = s.st.View(func(txn *store.Txn) error {
		counts, _ = s.OneTimeKeyCounts(txn, bob.String(), "BOBDEV")
		return nil
	})
	if counts[AlgSignedCurve25519] != 0 {
		t.Fatalf("counts after claims: %v", counts)
	}
	// A new fallback key is unused again.
	if _, err := s.Upload(ctx, bob, "BOBDEV", &UploadRequest{FallbackKeys: map[string]json.RawMessage{
		"signed_curve25519:FB2": raw(map[string]any{"key": "k-fallback-2", "fallback": true})}}); err != nil {
		t.Fatal(err)
	}
	if got := unused(); !slices.Equal(got, []string{AlgSignedCurve25519}) {
		t.Fatalf("unused fallback types after replacement: %v", got)
	}
	// Unknown devices and users yield nothing.
	r, err := s.Claim(ctx, map[string]map[string]string{bob.String(): {"NOPE": AlgSignedCurve25519}, "@carol:" + server: {"X": AlgSignedCurve25519}})
	if err != nil || len(r.OneTimeKeys) != 0 {
		t.Fatalf("claim of unknown devices: %v %v", r.OneTimeKeys, err)
	}
}

func TestUploadDeviceKeysChecks(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	alice := id.UserID("@alice:" + server)
	addDevice(t, s, alice, "ADEV")
	_, err := s.Upload(ctx, alice, "ADEV", &UploadRequest{DeviceKeys: raw(map[string]any{"user_id": alice, "device_id": "ADEV"})})
	if errCode(err) != "M_BAD_JSON" {
		t.Fatalf("missing fields: %v", err)
	}
	dk := map[string]any{"user_id": "@mallory:" + server, "device_id": "ADEV", "algorithms": []string{}, "keys": map[string]string{}, "signatures": map[string]any{}}
	if _, err = s.Upload(ctx, alice, "ADEV", &UploadRequest{DeviceKeys: raw(dk)}); errCode(err) != "M_INVALID_PARAM" {
		t.Fatalf("other user's keys: %v", err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	dk = deviceKeyObject(alice, "ADEV", pub)
	dk["signatures"] = map[string]any{alice.String(): map[string]string{"ed25519:ADEV": "bm90IGEgc2lnbmF0dXJl"}}
	if _, err = s.Upload(ctx, alice, "ADEV", &UploadRequest{DeviceKeys: raw(dk)}); errCode(err) != "M_INVALID_SIGNATURE" {
		t.Fatalf("bad self-signature: %v", err)
	}
	dk = signed(deviceKeyObject(alice, "ADEV", pub), alice, "ADEV", priv)
	if _, err = s.Upload(ctx, alice, "ADEV", &UploadRequest{DeviceKeys: raw(dk)}); err != nil {
		t.Fatalf("good device keys: %v", err)
	}
	q, err := s.Query(ctx, alice, map[string][]string{alice.String(): nil, "@nobody:" + server: nil, "@x:remote.test": nil})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.DeviceKeys[alice.String()]) != 1 || q.DeviceKeys["@nobody:"+server] == nil || q.Failures["remote.test"] == nil {
		t.Fatalf("query: %+v", q)
	}
	var got map[string]any
	_ = json.Unmarshal(q.DeviceKeys[alice.String()]["ADEV"], &got)
	if got["unsigned"].(map[string]any)["device_display_name"] != "dev ADEV" {
		t.Fatalf("query lacks the display name: %v", got)
	}
}

func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func deviceKeyObject(user id.UserID, dev string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{
		"user_id": user, "device_id": dev,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       map[string]string{"ed25519:" + dev: b64(pub), "curve25519:" + dev: b64(pub)},
		"signatures": map[string]any{},
	}
}

// signed adds user's signature by key "ed25519:<keyName>" to obj (spec: signing JSON).
func signed(obj map[string]any, user id.UserID, keyName string, priv ed25519.PrivateKey) map[string]any {
	c := map[string]any{}
	for k, v := range obj {
		if k != "signatures" && k != "unsigned" {
			c[k] = v
		}
	}
	b, err := canonicaljson.Marshal(c)
	if err != nil {
		panic(err)
	}
	sigs, _ := obj["signatures"].(map[string]any)
	if sigs == nil {
		sigs = map[string]any{}
	}
	mine, _ := sigs[user.String()].(map[string]string)
	if mine == nil {
		mine = map[string]string{}
	}
	mine["ed25519:"+keyName] = b64(ed25519.Sign(priv, b))
	sigs[user.String()] = mine
	obj["signatures"] = sigs
	return obj
}

func csKeyObject(user id.UserID, usage string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"user_id": user, "usage": []string{usage}, "keys": map[string]string{"ed25519:" + b64(pub): b64(pub)}}
}

func TestCrossSigningAndSignatures(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	alice, bob := id.UserID("@alice:"+server), id.UserID("@bob:"+server)
	addDevice(t, s, alice, "ADEV")
	dpub, dpriv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := s.Upload(ctx, alice, "ADEV", &UploadRequest{DeviceKeys: raw(signed(deviceKeyObject(alice, "ADEV", dpub), alice, "ADEV", dpriv))}); err != nil {
		t.Fatal(err)
	}
	mpub, mpriv, _ := ed25519.GenerateKey(rand.Reader)
	spub, spriv, _ := ed25519.GenerateKey(rand.Reader)
	upub, _, _ := ed25519.GenerateKey(rand.Reader)
	master := csKeyObject(alice, UsageMaster, mpub)
	self := signed(csKeyObject(alice, UsageSelfSigning, spub), alice, b64(mpub), mpriv)
	userSigning := signed(csKeyObject(alice, UsageUserSigning, upub), alice, b64(mpub), mpriv)
	req := &CrossSigningUpload{MasterKey: raw(master), SelfSigningKey: raw(self), UserSigningKey: raw(userSigning)}

	if needs, err := s.CrossSigningNeedsAuth(ctx, alice, req); err != nil || needs {
		t.Fatalf("first upload should not need UIA: %v %v", needs, err)
	}
	bad := &CrossSigningUpload{MasterKey: raw(master), SelfSigningKey: raw(csKeyObject(alice, UsageSelfSigning, spub))}
	if err := s.UploadCrossSigning(ctx, alice, bad); errCode(err) != "M_INVALID_SIGNATURE" {
		t.Fatalf("unsigned self-signing key: %v", err)
	}
	if err := s.UploadCrossSigning(ctx, alice, req); err != nil {
		t.Fatal(err)
	}
	if needs, _ := s.CrossSigningNeedsAuth(ctx, alice, req); needs {
		t.Fatal("repeating the stored keys should not need UIA")
	}
	m2, _, _ := ed25519.GenerateKey(rand.Reader)
	if needs, _ := s.CrossSigningNeedsAuth(ctx, alice, &CrossSigningUpload{MasterKey: raw(csKeyObject(alice, UsageMaster, m2))}); !needs {
		t.Fatal("replacing the master key must need UIA")
	}

	// Alice signs her device with her self-signing key.
	devSigned := signed(deviceKeyObject(alice, "ADEV", dpub), alice, "ADEV", dpriv)
	devSigned = signed(devSigned, alice, b64(spub), spriv)
	fails, err := s.UploadSignatures(ctx, alice, map[string]map[string]json.RawMessage{alice.String(): {"ADEV": raw(devSigned)}})
	if err != nil || len(fails) != 0 {
		t.Fatalf("signature upload: %v %v", fails, err)
	}
	// A forged one fails.
	forged := signed(deviceKeyObject(alice, "ADEV", dpub), alice, b64(spub), dpriv)
	fails, err = s.UploadSignatures(ctx, alice, map[string]map[string]json.RawMessage{alice.String(): {"ADEV": raw(forged)}})
	if err != nil || fails[alice.String()]["ADEV"]["errcode"] != "M_INVALID_SIGNATURE" {
		t.Fatalf("forged signature: %v %v", fails, err)
	}

	for _, viewer := range []id.UserID{alice, bob} {
		q, err := s.Query(ctx, viewer, map[string][]string{alice.String(): {}})
		if err != nil {
			t.Fatal(err)
		}
		if q.MasterKeys[alice.String()] == nil || q.SelfSigningKeys[alice.String()] == nil {
			t.Fatalf("%s: cross-signing keys missing: %+v", viewer, q)
		}
		if (q.UserSigningKeys[alice.String()] != nil) != (viewer == alice) {
			t.Fatalf("%s: user-signing key visibility wrong", viewer)
		}
		var dev struct {
			Signatures Signatures `json:"signatures"`
		}
		_ = json.Unmarshal(q.DeviceKeys[alice.String()]["ADEV"], &dev)
		if dev.Signatures[alice.String()]["ed25519:"+b64(spub)] == "" {
			t.Fatalf("%s: device lacks the self-signing signature: %v", viewer, dev.Signatures)
		}
	}
}

func TestToDeviceDeliveryAndAck(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	alice, bob := id.UserID("@alice:"+server), id.UserID("@bob:"+server)
	addDevice(t, s, bob, "B1")
	addDevice(t, s, bob, "B2")
	msg := map[string]map[string]json.RawMessage{bob.String(): {"*": raw(map[string]any{"n": 1})}}
	for range 2 { // a retried transaction is queued once
		if err := s.SendToDevice(ctx, alice, "ADEV", "m.test", "txn1", msg); err != nil {
			t.Fatal(err)
		}
	}
	// The same transaction ID with another event type is another transaction.
	if err := s.SendToDevice(ctx, alice, "ADEV", "m.other", "txn1", map[string]map[string]json.RawMessage{bob.String(): {"B1": raw(map[string]any{"n": 2})}}); err != nil {
		t.Fatal(err)
	}
	w1 := s.st.Stream().Watermark()
	read := func(dev string, since, upto uint64) []ToDeviceEvent {
		t.Helper()
		var out []ToDeviceEvent
		err := s.st.View(func(txn *store.Txn) error {
			var err error
			out, err = s.ToDeviceEvents(txn, bob.String(), dev, since, upto)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := read("B1", 0, w1); len(got) != 2 || got[0].Type != "m.test" || got[1].Type != "m.other" || got[0].Sender != alice.String() {
		t.Fatalf("B1 inbox: %+v", got)
	}
	if got := read("B2", 0, w1); len(got) != 1 {
		t.Fatalf("B2 inbox: %+v", got)
	}
	// A message sent after w1 survives the acknowledgement of w1.
	if err := s.SendToDevice(ctx, alice, "ADEV", "m.test", "txn2", msg); err != nil {
		t.Fatal(err)
	}
	w2 := s.st.Stream().Watermark()
	if err := s.AckToDevice(bob.String(), "B1", w1); err != nil {
		t.Fatal(err)
	}
	if got := read("B1", 0, w2); len(got) != 1 || string(got[0].Content) != `{"n":1}` {
		t.Fatalf("B1 after ack of w1: %+v", got)
	}
	if got := read("B1", w1, w2); len(got) != 1 {
		t.Fatalf("B1 window (w1, w2]: %+v", got)
	}
	if err := s.AckToDevice(bob.String(), "B1", w2); err != nil {
		t.Fatal(err)
	}
	if got := read("B1", 0, w2); len(got) != 0 {
		t.Fatalf("B1 after ack of w2: %+v", got)
	}
	if got := read("B2", 0, w2); len(got) != 2 {
		t.Fatalf("B2 is untouched by B1's acks: %+v", got)
	}
	// The inbox is bounded: the oldest messages are dropped.
	for i := range MaxInbox + 5 {
		m := map[string]map[string]json.RawMessage{bob.String(): {"B1": raw(map[string]any{"i": i})}}
		if err := s.SendToDevice(ctx, alice, "ADEV", "m.flood", fmt.Sprint("f", i), m); err != nil {
			t.Fatal(err)
		}
	}
	got := read("B1", 0, s.st.Stream().Watermark())
	if len(got) != MaxInbox || string(got[0].Content) != `{"i":5}` {
		t.Fatalf("bounded inbox: %d messages, first %s", len(got), got[0].Content)
	}
}

func TestBackupEtagAndCount(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	alice := id.UserID("@alice:" + server)
	if _, err := s.Backup(ctx, alice, ""); errCode(err) != "M_NOT_FOUND" {
		t.Fatalf("no backup yet: %v", err)
	}
	v1, err := s.CreateBackup(ctx, alice, BackupAlgorithmV1, raw(map[string]any{"public_key": "abc"}))
	if err != nil {
		t.Fatal(err)
	}
	key := func(verified bool, fmi, fc int) map[string]map[string]json.RawMessage {
		return map[string]map[string]json.RawMessage{"!r:" + server: {"sess": raw(map[string]any{
			"first_message_index": fmi, "forwarded_count": fc, "is_verified": verified, "session_data": map[string]any{"x": fmi}})}}
	}
	c1, err := s.PutBackupKeys(ctx, alice, v1, key(false, 5, 1))
	if err != nil || c1.Count != 1 {
		t.Fatalf("first key: %+v %v", c1, err)
	}
	c2, err := s.PutBackupKeys(ctx, alice, v1, key(false, 6, 0)) // worse: higher index
	if err != nil || c2.Etag != c1.Etag || c2.Count != 1 {
		t.Fatalf("a worse key must change nothing: %+v %+v %v", c1, c2, err)
	}
	c3, err := s.PutBackupKeys(ctx, alice, v1, key(true, 9, 9)) // better: verified
	if err != nil || c3.Etag == c1.Etag || c3.Count != 1 {
		t.Fatalf("a verified key replaces: %+v %+v %v", c1, c3, err)
	}
	got, err := s.BackupKeys(ctx, alice, v1, "!r:"+server, "sess")
	if err != nil || !json.Valid(got["!r:"+server]["sess"]) {
		t.Fatalf("get session: %v %v", got, err)
	}
	info, err := s.Backup(ctx, alice, "")
	if err != nil || info.Version != v1 || info.Count != 1 || info.Etag != c3.Etag {
		t.Fatalf("version info: %+v %v", info, err)
	}
	v2, _ := s.CreateBackup(ctx, alice, BackupAlgorithmV1, raw(map[string]any{"public_key": "def"}))
	_, err = s.PutBackupKeys(ctx, alice, v1, key(true, 0, 0))
	me, ok := merr.As(err)
	if !ok || me.Code != "M_WRONG_ROOM_KEYS_VERSION" || me.Extra["current_version"] != v2 {
		t.Fatalf("write to an old version: %v", err)
	}
	if _, err := s.BackupKeys(ctx, alice, v2, "!r:"+server, "sess"); errCode(err) != "M_NOT_FOUND" {
		t.Fatalf("missing session: %v", err)
	}
	// Reads and deletes may address the old version.
	d, err := s.DeleteBackupKeys(ctx, alice, v1, "!r:"+server, "")
	if err != nil || d.Count != 0 || d.Etag == c3.Etag {
		t.Fatalf("delete room keys: %+v %v", d, err)
	}
	if err := s.DeleteBackup(ctx, alice, v2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBackup(ctx, alice, v2); err != nil {
		t.Fatalf("deleting a deleted version succeeds: %v", err)
	}
	if err := s.DeleteBackup(ctx, alice, "99"); errCode(err) != "M_NOT_FOUND" {
		t.Fatalf("deleting an unknown version: %v", err)
	}
	if info, err := s.Backup(ctx, alice, ""); err != nil || info.Version != v1 {
		t.Fatalf("after deleting v2 the current version is v1: %+v %v", info, err)
	}
	if _, err := s.Backup(ctx, alice, v2); errCode(err) != "M_NOT_FOUND" {
		t.Fatalf("deleted version: %v", err)
	}
}

func TestParseSyncPos(t *testing.T) {
	for tok, want := range map[string]uint64{"s12_3": 12, "s7": 7, "s0_0": 0} {
		if got, err := ParseSyncPos(tok); err != nil || got != want {
			t.Errorf("%s: %d %v", tok, got, err)
		}
	}
	for _, tok := range []string{"", "12", "sx_1", "t5"} {
		if _, err := ParseSyncPos(tok); err == nil {
			t.Errorf("%q accepted", tok)
		}
	}
}
