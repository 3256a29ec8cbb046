package clientapi_test

// TEMPORARY: a local stand-in for appliance/testserver while its registration endpoint is not
// wired. Delete once testserver.Start works.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/clientapi"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

type localServer struct {
	URL, ServerName string
	acc             *accounts.Service
}

func startLocal(t *testing.T) *localServer {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.DiscardHandler)
	acc := accounts.New(st, "hearth.test", log)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	rm := rooms.New(st, events.Signer{ServerName: "hearth.test", KeyID: "ed25519:a", Key: priv}, acc, log)
	api := clientapi.New(clientapi.Options{ServerName: "hearth.test", MaxBodyBytes: 1 << 20, PerSecond: 10, Burst: 10}, acc, rm, nil, nil, log)
	e := echo.New()
	api.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &localServer{URL: srv.URL, ServerName: "hearth.test", acc: acc}
}

func (s *localServer) Register(t testing.TB, lp string, admin bool) *mautrix.Client {
	if _, err := s.acc.Register(context.Background(), lp, "pw", admin); err != nil {
		t.Fatal(err)
	}
	tok, dev, err := s.acc.Login(context.Background(), lp, "", "")
	if err != nil {
		t.Fatal(err)
	}
	cli, _ := mautrix.NewClient(s.URL, id.NewUserID(lp, s.ServerName), tok)
	cli.DeviceID = id.DeviceID(dev)
	return cli
}

func (s *localServer) Raw(t testing.TB, method, path, token string, body string) (int, map[string]any) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.URL+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}
