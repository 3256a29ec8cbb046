//go:build goolm

package e2ee_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/backup"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// TestEncryptedRoomMautrix: two users with mautrix-go crypto (goolm) exchange encrypted
// messages in an encrypted room; cross-signing is bootstrapped; a key backup is created and
// a third device of the sender restores the room key from it and decrypts.
func TestEncryptedRoomMautrix(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	alice := newPeer(t, srv.Register(t, "alice", false))
	bob := newPeer(t, srv.Register(t, "bob", false))
	aliceID, bobID := alice.cli.UserID, bob.cli.UserID

	// The sync sections E2EE clients need are there from the start.
	if n := alice.last.DeviceOTKCount.SignedCurve25519; n == 0 {
		t.Fatalf("device_one_time_keys_count after upload: %+v", alice.last.DeviceOTKCount)
	}
	if alice.last.FallbackKeys == nil {
		t.Fatal("device_unused_fallback_key_types missing from /sync")
	}

	// An encrypted room; Bob joins; Alice hears that Bob's device list matters to her now.
	created, err := alice.cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat",
		Invite: []id.UserID{bobID},
		InitialState: []*event.Event{{
			Type:     event.StateEncryption,
			StateKey: ptr(""),
			Content:  event.Content{Raw: map[string]any{"algorithm": id.AlgorithmMegolmV1}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	roomID := created.RoomID
	alice.sync()
	bob.syncUntil("the invite", func(r *mautrix.RespSync) bool { return r.Rooms.Invite[roomID] != nil })
	if _, err := bob.cli.JoinRoomByID(ctx, roomID); err != nil {
		t.Fatal(err)
	}
	alice.syncUntil("bob in device_lists.changed", func(r *mautrix.RespSync) bool {
		return slices.Contains(r.DeviceLists.Changed, bobID)
	})
	bob.sync()
	if enc, _ := bob.state.IsEncrypted(ctx, roomID); !enc {
		t.Fatal("bob does not see the room as encrypted")
	}

	// Alice -> Bob and Bob -> Alice.
	members := []id.UserID{aliceID, bobID}
	msg1, enc1 := alice.sendEncrypted(roomID, members, "hello bob")
	if got := bob.decryptUntil(roomID, "hello bob"); got.ID != msg1 || got.Sender != aliceID {
		t.Fatalf("bob decrypted %s from %s", got.ID, got.Sender)
	}
	bob.sendEncrypted(roomID, members, "hello alice")
	alice.decryptUntil(roomID, "hello alice")

	// Cross-signing: the first upload needs no UIA; Alice signs her device and master key.
	csKeys, err := alice.mach.GenerateCrossSigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	before := bob.since
	if err := alice.mach.PublishCrossSigningKeys(ctx, csKeys, nil); err != nil {
		t.Fatalf("publish cross-signing keys: %v", err)
	}
	if err := alice.mach.SignOwnMasterKey(ctx); err != nil {
		t.Fatalf("sign own master key: %v", err)
	}
	if err := alice.mach.SignOwnDevice(ctx, alice.mach.OwnIdentity()); err != nil {
		t.Fatalf("sign own device: %v", err)
	}
	bob.syncUntil("alice in device_lists.changed", func(r *mautrix.RespSync) bool {
		return slices.Contains(r.DeviceLists.Changed, aliceID)
	})
	changes, err := bob.cli.GetKeyChanges(ctx, before, bob.since)
	if err != nil || !slices.Contains(changes.Changed, aliceID) {
		t.Fatalf("/keys/changes: %+v %v", changes, err)
	}
	masterPub := csKeys.MasterKey.PublicKey()
	selfPub := csKeys.SelfSigningKey.PublicKey()
	for _, viewer := range []*peer{alice, bob} {
		q, err := viewer.cli.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{aliceID: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if q.MasterKeys[aliceID].Keys[id.NewKeyID(id.KeyAlgorithmEd25519, masterPub.String())] != masterPub {
			t.Fatalf("%s: master key missing: %+v", viewer.cli.UserID, q.MasterKeys)
		}
		if q.MasterKeys[aliceID].Signatures[aliceID][id.NewKeyID(id.KeyAlgorithmEd25519, alice.cli.DeviceID.String())] == "" {
			t.Fatalf("%s: master key not signed by alice's device", viewer.cli.UserID)
		}
		if _, ok := q.SelfSigningKeys[aliceID]; !ok {
			t.Fatalf("%s: self-signing key missing", viewer.cli.UserID)
		}
		if _, ok := q.UserSigningKeys[aliceID]; ok != (viewer == alice) {
			t.Fatalf("%s: user-signing key shown: %v", viewer.cli.UserID, ok)
		}
		dev := q.DeviceKeys[aliceID][alice.cli.DeviceID]
		if dev.Signatures[aliceID][id.NewKeyID(id.KeyAlgorithmEd25519, selfPub.String())] == "" {
			t.Fatalf("%s: alice's device is not signed by her self-signing key: %+v", viewer.cli.UserID, dev.Signatures)
		}
	}

	// Bob publishes his keys and Alice signs his master key with her user-signing key: a
	// signature only Alice may see.
	bobKeys, err := bob.mach.GenerateCrossSigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.mach.PublishCrossSigningKeys(ctx, bobKeys, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.mach.FetchKeys(ctx, []id.UserID{bobID}, true); err != nil {
		t.Fatal(err)
	}
	if err := alice.mach.SignUser(ctx, bobID, bobKeys.MasterKey.PublicKey()); err != nil {
		t.Fatalf("sign bob: %v", err)
	}
	uskID := id.NewKeyID(id.KeyAlgorithmEd25519, csKeys.UserSigningKey.PublicKey().String())
	for _, viewer := range []*peer{alice, bob} {
		q, err := viewer.cli.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{bobID: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if has := q.MasterKeys[bobID].Signatures[aliceID][uskID] != ""; has != (viewer == alice) {
			t.Fatalf("%s sees alice's signature of bob's master key: %v", viewer.cli.UserID, has)
		}
	}

	// Key backup: Alice backs up the session of her first message.
	backupKey, err := backup.NewMegolmBackupKey()
	if err != nil {
		t.Fatal(err)
	}
	authData := backup.MegolmAuthData{PublicKey: id.Ed25519(base64.RawStdEncoding.EncodeToString(backupKey.PublicKey().Bytes()))}
	ver, err := alice.cli.CreateKeyBackupVersion(ctx, &mautrix.ReqRoomKeysVersionCreate[backup.MegolmAuthData]{Algorithm: id.KeyBackupAlgorithmMegolmBackupV1, AuthData: authData})
	if err != nil {
		t.Fatal(err)
	}
	igs, err := alice.mach.CryptoStore.GetGroupSession(ctx, roomID, enc1.SessionID)
	if err != nil || igs == nil {
		t.Fatalf("alice's inbound copy of her session: %v", err)
	}
	sessionKey, err := igs.Internal.Export(igs.Internal.FirstKnownIndex())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := backup.EncryptSessionData(backupKey, backup.MegolmSessionData{
		Algorithm:          id.AlgorithmMegolmV1,
		ForwardingKeyChain: []string{},
		SenderClaimedKeys:  backup.SenderClaimedKeys{Ed25519: igs.SigningKey},
		SenderKey:          igs.SenderKey,
		SessionKey:         string(sessionKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	sealedJSON, _ := json.Marshal(sealed)
	put, err := alice.cli.PutKeysInBackupForRoomAndSession(ctx, ver.Version, roomID, enc1.SessionID, &mautrix.ReqKeyBackupData{
		FirstMessageIndex: int(igs.Internal.FirstKnownIndex()), SessionData: sealedJSON,
	})
	if err != nil || put.Count != 1 || put.ETag == "" {
		t.Fatalf("put key in backup: %+v %v", put, err)
	}
	info, err := alice.cli.GetKeyBackupLatestVersion(ctx)
	if err != nil || info.Version != ver.Version || info.Count != 1 || info.ETag != put.ETag {
		t.Fatalf("backup version info: %+v %v", info, err)
	}

	// A third device of Alice restores the key from the backup and reads her first message.
	third, err := mautrix.NewClient(srv.URL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := third.Login(ctx, &mautrix.ReqLogin{
		Type:       mautrix.AuthTypePassword,
		Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "alice"},
		Password:   "password-alice", StoreCredentials: true,
	}); err != nil {
		t.Fatal(err)
	}
	alice3 := newPeer(t, third)
	restored, err := alice3.mach.DownloadAndStoreLatestKeyBackup(ctx, backupKey)
	if err != nil || restored != ver.Version {
		t.Fatalf("restore from backup: %q %v", restored, err)
	}
	evt, err := third.GetEvent(ctx, roomID, msg1)
	if err != nil {
		t.Fatal(err)
	}
	evt.Type.Class = event.MessageEventType
	if err := evt.Content.ParseRaw(evt.Type); err != nil {
		t.Fatal(err)
	}
	dec, err := alice3.mach.DecryptMegolmEvent(ctx, evt)
	if err != nil || dec.Content.AsMessage().Body != "hello bob" {
		t.Fatalf("third device decrypts from backup: %v", err)
	}

	// Writing to a version that is no longer current is refused with the current version.
	ver2, err := alice.cli.CreateKeyBackupVersion(ctx, &mautrix.ReqRoomKeysVersionCreate[backup.MegolmAuthData]{Algorithm: id.KeyBackupAlgorithmMegolmBackupV1, AuthData: authData})
	if err != nil {
		t.Fatal(err)
	}
	status, body := srv.Raw(t, http.MethodPut, "/_matrix/client/v3/room_keys/keys?version="+ver.Version.String(), alice.cli.AccessToken, `{"rooms":{}}`)
	if status != http.StatusForbidden || body["errcode"] != "M_WRONG_ROOM_KEYS_VERSION" || body["current_version"] != ver2.Version.String() {
		t.Fatalf("write to an old backup version: %d %v", status, body)
	}

	// Replacing cross-signing keys needs the password (user-interactive auth).
	newKeys, err := alice.mach.GenerateCrossSigningKeys()
	if err != nil {
		t.Fatal(err)
	}
	err = alice.mach.PublishCrossSigningKeys(ctx, newKeys, nil)
	if httpErr, ok := err.(mautrix.HTTPError); !ok || !httpErr.IsStatus(http.StatusUnauthorized) {
		t.Fatalf("replacing cross-signing keys without UIA: %v", err)
	}
	err = alice.mach.PublishCrossSigningKeys(ctx, newKeys, func(r *mautrix.RespUserInteractive) any {
		return map[string]any{
			"type": "m.login.password", "session": r.Session, "password": "password-alice",
			"identifier": map[string]any{"type": "m.id.user", "user": aliceID},
		}
	})
	if err != nil {
		t.Fatalf("replacing cross-signing keys with UIA: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
