package federation_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/testserver"
	hearthtls "github.com/hearth-home/hearth/tls"
)

// The legacy fallback against a real older server: Dendrite v0.13.7 predates authenticated
// media, so its federation API answers 404 M_UNRECOGNIZED for /_matrix/federation/v1/media/...
// and Hearth must fetch through the origin's unauthenticated /_matrix/media/v3/download.

const legacyDendriteVersion = "v0.13.7"

// legacyDendriteBinDir installs (once, cached like dendriteBinDir) Dendrite v0.13.7. In CI the
// install is mandatory; elsewhere a failed install skips the test with the reason.
func legacyDendriteBinDir(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	binDir := filepath.Join(cache, "hearth-bench", "dendrite-"+legacyDendriteVersion, "bin")
	stamp := filepath.Join(binDir, ".installed")
	if b, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(b)) == legacyDendriteVersion {
		if _, err := os.Stat(filepath.Join(binDir, "dendrite")); err == nil {
			return binDir
		}
	}
	if err := installDendriteVersion(binDir, legacyDendriteVersion); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("install Dendrite %s: %v", legacyDendriteVersion, err)
		}
		t.Skipf("Dendrite %s is not installed and could not be installed: %v", legacyDendriteVersion, err)
	}
	if err := os.WriteFile(stamp, []byte(legacyDendriteVersion+"\n"), 0o644); err != nil {
		t.Fatalf("write install stamp: %v", err)
	}
	return binDir
}

// installDendriteVersion runs `go install` of Dendrite's commands at version into binDir
// (cgo on: its SQLite driver is mattn/go-sqlite3).
func installDendriteVersion(binDir, version string) error {
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

// startDendriteBin runs the Dendrite in binDir as startDendrite does.
func startDendriteBin(t *testing.T, ca testserver.CA, binDir string) *dendrite {
	t.Helper()
	dir := t.TempDir()
	fedPort, httpPort := testserver.FreePort(t), testserver.FreePort(t)
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
		if t.Failed() && os.Getenv("HEARTH_TEST_LOG") == "" {
			t.Logf("dendrite output:\n%s", d.log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(d.URL + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
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
}

func TestRemoteMediaLegacyFallback(t *testing.T) {
	ca := testserver.NewCA(t)
	d := startDendriteBin(t, ca, legacyDendriteBinDir(t))
	b := testserver.Start(t, testserver.Federated(t, ca))
	dave := d.register(t, "dave")
	bob := b.Register(t, "bob", false)

	// The premise: this origin does not serve the authenticated federation endpoint (a
	// server that did would answer an unsigned request 401, not 404 M_UNRECOGNIZED).
	roots, err := hearthtls.ExtraRoots([]string{ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := hc.Get("https://" + d.ServerName + "/_matrix/federation/v1/media/download/x")
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(pb), "M_UNRECOGNIZED") {
		t.Fatalf("premise: Dendrite %s answered %d %s to the federation media endpoint", legacyDendriteVersion, resp.StatusCode, pb)
	}
	data := []byte("plain text from an older server\n")
	uri := upload(t, dave, data, "text/plain", "old.txt")

	r := getMedia(t, b.URL, dl(uri), bob.AccessToken)
	if r.status != http.StatusOK || !bytes.Equal(r.body, data) {
		t.Fatalf("download through the legacy fallback: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := r.header.Get("Content-Disposition"); !strings.Contains(cd, "old.txt") {
		t.Errorf("Content-Disposition %q: the legacy answer's filename was lost", cd)
	}
	if !exists(blobOn(b, data)) {
		t.Fatal("the fallback's content was not cached")
	}
	r = getMedia(t, b.URL, "/_matrix/client/v1/media/download/"+d.ServerName+"/doesNotExist42", bob.AccessToken)
	if r.status != http.StatusNotFound || r.errcode() != "M_NOT_FOUND" {
		t.Fatalf("unknown media through the fallback: %d %s", r.status, r.body)
	}
}
