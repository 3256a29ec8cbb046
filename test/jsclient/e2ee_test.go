package jsclient_test

// e2ee.mjs runs two matrix-js-sdk clients with Rust crypto (@matrix-org/matrix-sdk-crypto-wasm,
// as in Element Web) against a real Hearth: cross-signing bootstrap, secret storage, key backup,
// an encrypted room where each decrypts the other's message, and a new device of the same user
// that gets the room keys from the backup and decrypts the earlier messages.

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

type e2eeResult struct {
	OK               bool        `json:"ok"`
	Stage            string      `json:"stage"`
	Error            string      `json:"error"`
	Alice            id.UserID   `json:"alice"`
	Bob              id.UserID   `json:"bob"`
	AliceDevice      id.DeviceID `json:"alice_device"`
	AliceNewDevice   id.DeviceID `json:"alice_new_device"`
	RoomID           id.RoomID   `json:"room_id"`
	AliceEvent       id.EventID  `json:"alice_event"`
	BobEvent         id.EventID  `json:"bob_event"`
	MasterKey        string      `json:"master_key"`
	UIAPasswordAuths int         `json:"uia_password_auths"`
	BackupVersion    string      `json:"backup_version"`
	BackedUp         int         `json:"backed_up"`
	RestoredImported int         `json:"restored_imported"`
}

func TestMatrixJSSDKE2EE(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		requireTool(t, "node is not installed: install Node.js 20 or newer, then run `make deps`")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@matrix-org", "matrix-sdk-crypto-wasm", "package.json")); err != nil {
		requireTool(t, "test/jsclient/node_modules/@matrix-org/matrix-sdk-crypto-wasm is missing: run `make deps`")
	}

	srv := testserver.Start(t)
	alice := srv.Register(t, "jsalice", false)
	bob := srv.Register(t, "jsbob", false)

	ctx, cancel := context.WithTimeout(t.Context(), 80*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "e2ee.mjs", srv.URL,
		"jsalice", "password-jsalice", "jsbob", "password-jsbob")
	cmd.Env = append(os.Environ(), "E2EE_TIMEOUT_MS=55000")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("e2ee.mjs ran %v", time.Since(start).Round(time.Millisecond))
	if os.Getenv("HEARTH_TEST_LOG") != "" {
		t.Logf("e2ee.mjs stderr:\n%s", stderr.String())
	}
	if runErr != nil {
		t.Fatalf("e2ee.mjs: %v\nstdout:\n%s\nstderr:\n%s", runErr, stdout.String(), tail(stderr.String(), 6000))
	}
	var res e2eeResult
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("e2ee.mjs result line: %v\nstdout:\n%s", err, stdout.String())
	}
	if !res.OK {
		t.Fatalf("e2ee.mjs: %+v\nstderr:\n%s", res, tail(stderr.String(), 6000))
	}
	t.Logf("e2ee.mjs result: %+v", res)
	if res.Alice != alice.UserID || res.Bob != bob.UserID {
		t.Errorf("js clients were %s and %s, want %s and %s", res.Alice, res.Bob, alice.UserID, bob.UserID)
	}
	if res.AliceNewDevice == "" || res.AliceNewDevice == res.AliceDevice {
		t.Errorf("alice's new device %q, want one other than %q", res.AliceNewDevice, res.AliceDevice)
	}
	if res.UIAPasswordAuths != 1 {
		t.Errorf("cross-signing bootstrap and reset went through %d password UIA stages, want 1", res.UIAPasswordAuths)
	}
	if res.RestoredImported < 2 || res.BackedUp < 2 {
		t.Errorf("backed up %d and restored %d room keys, want 2 or more", res.BackedUp, res.RestoredImported)
	}

	// The server has alice's master key, as the JS client created it.
	keys, err := bob.QueryKeys(ctx, &mautrix.ReqQueryKeys{DeviceKeys: mautrix.DeviceKeysRequest{alice.UserID: {}}})
	if err != nil {
		t.Fatalf("keys/query: %v", err)
	}
	master, ok := keys.MasterKeys[alice.UserID]
	if !ok || master.Keys[id.NewKeyID(id.KeyAlgorithmEd25519, res.MasterKey)] != id.Ed25519(res.MasterKey) {
		t.Errorf("keys/query master key of %s is %+v, want %s", alice.UserID, master, res.MasterKey)
	}
	if _, ok := keys.DeviceKeys[alice.UserID][res.AliceNewDevice]; !ok {
		t.Errorf("keys/query lacks alice's new device %s", res.AliceNewDevice)
	}

	// The backup the JS client created is the current one.
	backup, err := alice.GetKeyBackupLatestVersion(ctx)
	if err != nil {
		t.Fatalf("GET room_keys/version: %v", err)
	}
	if backup.Version.String() != res.BackupVersion || backup.Count < 2 {
		t.Errorf("latest backup version %s with %d keys, want %s with 2 or more", backup.Version, backup.Count, res.BackupVersion)
	}

	// The messages are stored encrypted: the server never saw the plaintext.
	for _, evID := range []id.EventID{res.AliceEvent, res.BobEvent} {
		ev, err := alice.GetEvent(ctx, res.RoomID, evID)
		if err != nil {
			t.Fatalf("GET event %s: %v", evID, err)
		}
		if ev.Type.Type != "m.room.encrypted" {
			t.Errorf("event %s has type %q, want m.room.encrypted", evID, ev.Type.Type)
		}
		if alg, _ := ev.Content.Raw["algorithm"].(string); alg != "m.megolm.v1.aes-sha2" {
			t.Errorf("event %s algorithm %q, want m.megolm.v1.aes-sha2", evID, alg)
		}
	}
}
