package federation_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/testserver"
	hearthtls "github.com/hearth-home/hearth/tls"
)

// dendriteVersion is the peer the interop issue names.
const dendriteVersion = "v0.13.8"

// dendriteSecret is the shared registration secret of the test Dendrite.
const dendriteSecret = "dendrite-test-secret"

// dendriteBinDir returns a directory holding dendrite, generate-config and generate-keys at
// dendriteVersion. It shares hearth-bench's cache (the same stamp), so whichever runs first pays
// for the install, which takes minutes.
func dendriteBinDir(t *testing.T) string {
	return cachedDendrite(t, dendriteVersion, "dendrite", dendriteVersion+" -trimpath -s -w")
}

// cachedDendrite returns the cache directory dirName (under the user cache's hearth-bench)
// holding Dendrite at version, installing it when its stamp does not read stamp. In CI the
// install is mandatory; elsewhere a failed install (no network, no C compiler) skips the test
// with the reason.
func cachedDendrite(t *testing.T, version, dirName, stamp string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	binDir := filepath.Join(cache, "hearth-bench", dirName, "bin")
	stampFile := filepath.Join(binDir, ".installed")
	if b, err := os.ReadFile(stampFile); err == nil && strings.TrimSpace(string(b)) == stamp {
		if _, err := os.Stat(filepath.Join(binDir, "dendrite")); err == nil {
			return binDir
		}
	}
	if err := installDendrite(binDir, version); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("install Dendrite %s: %v", version, err)
		}
		t.Skipf("Dendrite %s is not installed and could not be installed: %v", version, err)
	}
	if err := os.WriteFile(stampFile, []byte(stamp+"\n"), 0o644); err != nil {
		t.Fatalf("write install stamp: %v", err)
	}
	return binDir
}

// installDendrite runs `go install` for Dendrite's three commands at version, outside any
// module and with cgo on, because Dendrite's SQLite driver is mattn/go-sqlite3.
func installDendrite(binDir, version string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", binDir, err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("find the go tool: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	args := []string{"install", "-trimpath", "-ldflags=-s -w"}
	for _, c := range []string{"dendrite", "generate-config", "generate-keys"} {
		args = append(args, "github.com/matrix-org/dendrite/cmd/"+c+"@"+version)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = os.TempDir()
	cmd.Env = append(dEnvWithout("GOBIN=", "GOFLAGS=", "CGO_ENABLED="), "GOBIN="+binDir, "CGO_ENABLED=1", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// dEnvWithout is the process environment minus variables with the given prefixes.
func dEnvWithout(prefixes ...string) []string {
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	return env
}

// dendrite is a running Dendrite monolith: clients on plain HTTP, federation on HTTPS at the
// port in its server name, with a certificate from the test CA.
type dendrite struct {
	URL        string // client API base
	ServerName string // localhost:PORT
	cmd        *exec.Cmd
	log        *dLogBuffer
	done       chan struct{}
	n          int
}

// dLogBuffer collects the process output; the process writes while the test reads.
type dLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *dLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// quiet is the output without the two lines Dendrite logs at info for every /messages call,
// which the tests' polling would otherwise multiply into thousands.
func (s *dLogBuffer) quiet() string {
	var out strings.Builder
	for _, line := range strings.SplitAfter(s.String(), "\n") {
		if strings.Contains(line, `msg="Fetched `) || strings.Contains(line, "msg=Responding ") {
			continue
		}
		out.WriteString(line)
	}
	return out.String()
}

func (s *dLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDendrite configures and starts Dendrite for loopback federation with Hearth servers that
// trust ca. Its output goes to the test log when the test fails or DENDRITE_DUMP is set, and
// straight to stderr with HEARTH_TEST_LOG; DENDRITE_LOG_LEVEL (default info) sets its level.
func startDendrite(t *testing.T, ca testserver.CA) *dendrite {
	t.Helper()
	return startDendriteBin(t, ca, dendriteBinDir(t))
}

// startDendriteBin runs the Dendrite installed in binDir as startDendrite does.
func startDendriteBin(t *testing.T, ca testserver.CA, binDir string) *dendrite {
	t.Helper()
	dir := t.TempDir()
	fedPort := testserver.FreePort(t)
	httpPort := testserver.FreePort(t)
	d := &dendrite{
		URL:        "http://127.0.0.1:" + strconv.Itoa(httpPort),
		ServerName: "localhost:" + strconv.Itoa(fedPort),
		log:        &dLogBuffer{},
		done:       make(chan struct{}),
	}
	certFile, keyFile := dWriteLeaf(t, ca, dir)
	writeDendriteConfig(t, binDir, dir, d.ServerName)

	d.cmd = exec.Command(filepath.Join(binDir, "dendrite"),
		"-config", filepath.Join(dir, "dendrite.yaml"),
		"-http-bind-address", "127.0.0.1:"+strconv.Itoa(httpPort),
		"-https-bind-address", "127.0.0.1:"+strconv.Itoa(fedPort),
		"-tls-cert", certFile, "-tls-key", keyFile)
	d.cmd.Dir = dir
	d.cmd.Env = dEnvWithout("GOMEMLIMIT=", "GOGC=", "PPROFLISTEN=")
	var out io.Writer = d.log
	if os.Getenv("HEARTH_TEST_LOG") != "" {
		out = io.MultiWriter(d.log, os.Stderr)
	}
	d.cmd.Stdout, d.cmd.Stderr = out, out
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start dendrite: %v", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if (t.Failed() || os.Getenv("DENDRITE_DUMP") != "") && os.Getenv("HEARTH_TEST_LOG") == "" {
			t.Logf("dendrite output (its per-request /messages lines left out):\n%s", d.log.quiet())
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(d.URL + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-d.done:
			t.Fatalf("dendrite exited during start:\n%s", d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dendrite did not become ready: %v\n%s", err, d.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d
}

// stop ends the Dendrite process this test started: SIGTERM, then SIGKILL after a grace period.
func (d *dendrite) stop() {
	if d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// dWriteLeaf issues Dendrite's federation certificate from the test CA (so Hearth, which trusts
// the CA, verifies it like a real certificate) and writes it and its key as PEM files.
func dWriteLeaf(t *testing.T, ca testserver.CA, dir string) (string, string) {
	t.Helper()
	leaf, _, err := hearthtls.SignWithCA(ca.Cert, ca.Key, "localhost")
	if err != nil {
		t.Fatalf("issue dendrite certificate: %v", err)
	}
	var chain bytes.Buffer
	for _, der := range leaf.Certificate {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	kb, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatalf("encode dendrite key: %v", err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, chain.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// writeDendriteConfig writes dir/dendrite.yaml and dir/matrix_key.pem: Dendrite's own generated
// configuration, edited for loopback federation. Dendrite does not take a CA bundle for outbound
// federation, so it skips certificate checks instead; Hearth's side does verify Dendrite's.
func writeDendriteConfig(t *testing.T, binDir, dir, serverName string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	keys := exec.CommandContext(ctx, filepath.Join(binDir, "generate-keys"), "-private-key", "matrix_key.pem")
	keys.Dir = dir
	if out, err := keys.CombinedOutput(); err != nil {
		t.Fatalf("generate-keys: %v\n%s", err, out)
	}
	gen := exec.CommandContext(ctx, filepath.Join(binDir, "generate-config"), "-dir", dir, "-server", serverName)
	out, err := gen.Output()
	if err != nil {
		t.Fatalf("generate-config: %v", err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("parse generated dendrite config: %v", err)
	}
	set := func(path string, v any) {
		keys := strings.Split(path, ".")
		m := cfg
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
	set("global.server_name", serverName)
	set("global.private_key", filepath.Join(dir, "matrix_key.pem"))
	set("global.trusted_third_party_id_servers", []any{})
	set("global.report_stats.enabled", false)
	set("global.dns_cache.enabled", false)
	set("global.jetstream.storage_path", dir)
	set("global.jetstream.in_memory", false)
	set("global.server_notices.enabled", false)
	set("federation_api.key_perspectives", []any{}) // only the servers themselves, never matrix.org
	set("federation_api.prefer_direct_fetch", true)
	set("federation_api.disable_tls_validation", true)
	set("federation_api.send_max_retries", 5)
	set("client_api.registration_shared_secret", dendriteSecret)
	set("client_api.registration_disabled", true) // shared-secret registration still works
	set("client_api.rate_limiting.enabled", false)
	set("sync_api.search.enabled", false)
	set("media_api.base_path", filepath.Join(dir, "media"))
	level := "info"
	if l := os.Getenv("DENDRITE_LOG_LEVEL"); l != "" {
		level = l
	}
	set("logging", []any{map[string]any{"type": "std", "level": level}})
	set("tracing.enabled", false)
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dendrite.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// register creates a Dendrite user with shared-secret registration and returns a client.
func (d *dendrite) register(t *testing.T, localpart string) *mautrix.Client {
	t.Helper()
	d.n++
	password := fmt.Sprintf("password-%s-%d", localpart, d.n)
	var nonce struct {
		Nonce string `json:"nonce"`
	}
	dendriteJSON(t, http.MethodGet, d.URL+"/_synapse/admin/v1/register", nil, &nonce)
	mac := hmac.New(sha1.New, []byte(dendriteSecret))
	mac.Write([]byte(nonce.Nonce + "\x00" + localpart + "\x00" + password + "\x00notadmin"))
	body := map[string]any{"nonce": nonce.Nonce, "username": localpart, "password": password, "admin": false, "mac": hex.EncodeToString(mac.Sum(nil))}
	var reg struct {
		UserID      id.UserID   `json:"user_id"`
		AccessToken string      `json:"access_token"`
		DeviceID    id.DeviceID `json:"device_id"`
	}
	dendriteJSON(t, http.MethodPost, d.URL+"/_synapse/admin/v1/register", body, &reg)
	cli, err := mautrix.NewClient(d.URL, reg.UserID, reg.AccessToken)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	cli.DeviceID = reg.DeviceID
	return cli
}

func dendriteJSON(t *testing.T, method, url string, body, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
	}
}

// dSyncSince runs one non-blocking /sync from since ("" for an initial sync).
func dSyncSince(t *testing.T, c *mautrix.Client, since string) *mautrix.RespSync {
	t.Helper()
	resp, err := c.SyncRequest(context.Background(), 0, since, "", false, event.PresenceOnline)
	if err != nil {
		t.Logf("sync: %v", err)
		return nil
	}
	return resp
}

// ephemeralOf returns the room's ephemeral events of one type in a /sync response, parsed.
func ephemeralOf(resp *mautrix.RespSync, room id.RoomID, typ event.Type) []*event.Event {
	if resp == nil {
		return nil
	}
	jr := resp.Rooms.Join[room]
	if jr == nil {
		return nil
	}
	var out []*event.Event
	for _, ev := range jr.Ephemeral.Events {
		if ev.Type.Type == typ.Type {
			// mautrix leaves ephemeral content unparsed in a raw /sync response.
			ev.Type.Class = event.EphemeralEventType
			if err := ev.Content.ParseRaw(ev.Type); err != nil {
				continue
			}
			out = append(out, ev)
		}
	}
	return out
}

// dTypingIn reports whether user shows as typing in room in the /sync since the given token.
func dTypingIn(t *testing.T, c *mautrix.Client, since string, room id.RoomID, user id.UserID) bool {
	for _, ev := range ephemeralOf(dSyncSince(t, c, since), room, event.EphemeralEventTyping) {
		if slices.Contains(ev.Content.AsTyping().UserIDs, user) {
			return true
		}
	}
	return false
}

// dReadReceiptIn reports whether user's m.read receipt on eventID is in the /sync since the token.
func dReadReceiptIn(t *testing.T, c *mautrix.Client, since string, room id.RoomID, eventID id.EventID, user id.UserID) bool {
	for _, ev := range ephemeralOf(dSyncSince(t, c, since), room, event.EphemeralEventReceipt) {
		if _, ok := (*ev.Content.AsReceipt())[eventID][event.ReceiptTypeRead][user]; ok {
			return true
		}
	}
	return false
}

// dGet is an authenticated GET that returns the status and body.
func dGet(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, b
}
