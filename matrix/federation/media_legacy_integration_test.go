package federation_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
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

// legacyDendriteBinDir installs (once, cached like dendriteBinDir) Dendrite v0.13.7.
func legacyDendriteBinDir(t *testing.T) string {
	return cachedDendrite(t, legacyDendriteVersion, "dendrite-"+legacyDendriteVersion, legacyDendriteVersion)
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
