package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_matrix/client/versions" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	listen := strings.TrimPrefix(srv.URL, "http://")

	h := newHarness(t)
	if code := h.run("healthcheck", "--listen", listen); code != exitOK {
		t.Fatalf("derived URL: exit %d: %s", code, h.stderr.String())
	}
	h = newHarness(t)
	h.d.environ = append(h.d.environ, "HEARTH_LISTEN="+listen)
	if code := h.run("healthcheck"); code != exitOK {
		t.Fatalf("URL from environment: exit %d: %s", code, h.stderr.String())
	}
	h = newHarness(t)
	if code := h.run("healthcheck", "--url", srv.URL+"/_matrix/client/versions"); code != exitOK {
		t.Fatalf("--url: exit %d: %s", code, h.stderr.String())
	}

	status = http.StatusServiceUnavailable
	h = newHarness(t)
	if code := h.run("healthcheck", "--listen", listen); code != exitFailure ||
		!strings.Contains(h.stderr.String(), "503") {
		t.Fatalf("503: exit %d, stderr %q", code, h.stderr.String())
	}
	srv.Close()
	h = newHarness(t)
	if code := h.run("healthcheck", "--listen", listen); code != exitFailure {
		t.Fatalf("down: exit %d", code)
	}
}

func TestVersionsURL(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1:8008":  "http://127.0.0.1:8008/_matrix/client/versions",
		"0.0.0.0:8008":    "http://127.0.0.1:8008/_matrix/client/versions",
		":8008":           "http://127.0.0.1:8008/_matrix/client/versions",
		"[::]:8008":       "http://[::1]:8008/_matrix/client/versions",
		"hearth.lan:8008": "http://hearth.lan:8008/_matrix/client/versions",
	}
	for listen, want := range cases {
		if got, err := versionsURL(listen); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", listen, got, err, want)
		}
	}
	if _, err := versionsURL("8008"); err == nil {
		t.Error("want an error for a bare port")
	}
}
