package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/control"
)

// fakeAdmin records calls; it stands in for both the socket client and the offline store.
type fakeAdmin struct {
	mu    sync.Mutex
	calls []string
	users []control.UserInfo
	err   error
}

func (f *fakeAdmin) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeAdmin) AddUser(_ context.Context, name, password string, admin bool) (string, error) {
	f.record("add %s %s %v", name, password, admin)
	return "@" + name + ":test", f.err
}

func (f *fakeAdmin) ListUsers(context.Context) ([]control.UserInfo, error) {
	f.record("list")
	return f.users, f.err
}

func (f *fakeAdmin) SetPassword(_ context.Context, name, password string) error {
	f.record("passwd %s %s", name, password)
	return f.err
}

func (f *fakeAdmin) Deactivate(_ context.Context, name string) error {
	f.record("deactivate %s", name)
	return f.err
}

func (f *fakeAdmin) CreateToken(_ context.Context, uses int, expiry time.Duration) (string, error) {
	f.record("token %d %s", uses, expiry)
	return "tok123", f.err
}

// fakeTerm answers ReadPassword from a list; a nil fakeTerm is "not a terminal".
type fakeTerm struct{ lines []string }

func (t *fakeTerm) IsTerminal() bool { return t != nil }

func (t *fakeTerm) ReadPassword() ([]byte, error) {
	if len(t.lines) == 0 {
		return nil, io.EOF
	}
	line := t.lines[0]
	t.lines = t.lines[1:]
	return []byte(line), nil
}

type harness struct {
	d              *deps
	stdout, stderr bytes.Buffer
	dataDir        string
}

// newHarness gives deps whose outside world fails the test unless a test sets it up: no server
// runs (dial says so) and the offline store must not be touched.
func newHarness(t *testing.T) *harness {
	h := &harness{dataDir: t.TempDir()}
	h.d = &deps{
		stdin:   strings.NewReader(""),
		stdout:  &h.stdout,
		stderr:  &h.stderr,
		environ: []string{"HEARTH_DATA_DIR=" + h.dataDir},
		term:    (*fakeTerm)(nil),
		dial:    control.Dial,
		openOffline: func(config.Config, *slog.Logger) (control.Admin, func() error, error) {
			t.Error("offline store opened")
			return nil, nil, errors.New("unexpected")
		},
		runServer: func(context.Context, config.Config, *slog.Logger) error {
			t.Error("server started")
			return nil
		},
		http:    &http.Client{},
		version: "1.2.3-test",
	}
	return h
}

func (h *harness) run(args ...string) int {
	return run(context.Background(), args, h.d)
}

func TestExitCodesAndUsage(t *testing.T) {
	cases := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, exitUsage, "", "Commands:"},
		{[]string{"-h"}, exitOK, "healthcheck", ""},
		{[]string{"help"}, exitOK, "serve", ""},
		{[]string{"launch"}, exitUsage, "", `unknown command "launch"`},
		{[]string{"user"}, exitUsage, "", "passwd"},
		{[]string{"user", "-h"}, exitOK, "deactivate", ""},
		{[]string{"user", "frobnicate"}, exitUsage, "", "unknown command"},
		{[]string{"user", "add"}, exitUsage, "", "missing NAME"},
		{[]string{"user", "add", "a", "b"}, exitUsage, "", `unexpected argument "b"`},
		{[]string{"user", "add", ""}, exitUsage, "", "NAME is empty"},
		{[]string{"user", "add", "-h"}, exitOK, "", "-password-stdin"},
		{[]string{"user", "list", "extra"}, exitUsage, "", "unexpected argument"},
		{[]string{"serve", "--nope"}, exitUsage, "", "flag provided but not defined"},
		{[]string{"serve", "-h"}, exitOK, "", "-federation-listen"},
		{[]string{"token", "create", "--uses", "-1"}, exitUsage, "", "--uses must not be negative"},
		{[]string{"token", "create", "--expires", "soon"}, exitUsage, "", "invalid value"},
		{[]string{"version"}, exitOK, "hearth 1.2.3-test\n", ""},
		{[]string{"version", "x"}, exitUsage, "", "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			h := newHarness(t)
			if code := h.run(tc.args...); code != tc.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tc.code, h.stderr.String())
			}
			if !strings.Contains(h.stdout.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", h.stdout.String(), tc.stdout)
			}
			if !strings.Contains(h.stderr.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", h.stderr.String(), tc.stderr)
			}
		})
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	cases := []struct {
		args  []string
		pos   []string
		admin bool
	}{
		{[]string{"alice", "--admin"}, []string{"alice"}, true},
		{[]string{"--admin", "alice"}, []string{"alice"}, true},
		{[]string{"-admin=false", "alice"}, []string{"alice"}, false},
		{[]string{"--", "-alice"}, []string{"-alice"}, false},
		{[]string{"alice", "--", "--admin"}, []string{"alice", "--admin"}, false},
	}
	for _, tc := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		admin := fs.Bool("admin", false, "")
		names := make([]string, len(tc.pos))
		pos, err := parseArgs(fs, tc.args, names...)
		if err != nil || !reflect.DeepEqual(pos, tc.pos) || *admin != tc.admin {
			t.Errorf("%q: pos %q admin %v err %v; want %q %v", tc.args, pos, *admin, err, tc.pos, tc.admin)
		}
	}
}

func TestServeLoadsConfigAndRuns(t *testing.T) {
	h := newHarness(t)
	cfgFile := filepath.Join(t.TempDir(), "hearth.yaml")
	if err := os.WriteFile(cfgFile, []byte("server_name: file.example\nlisten: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.d.environ = append(h.d.environ, "HEARTH_CONFIG="+cfgFile, "HEARTH_LISTEN=127.0.0.1:2", "HEARTH_LOG_FORMAT=json")
	var got config.Config
	h.d.runServer = func(ctx context.Context, cfg config.Config, log *slog.Logger) error {
		if ctx.Err() != nil {
			t.Error("context already cancelled")
		}
		got = cfg
		return nil
	}
	if code := h.run("serve", "--server-name", "flag.example", "--tls-cert", "c", "--tls-key", "k"); code != exitOK {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	if got.ServerName != "flag.example" || got.Listen != "127.0.0.1:2" || got.DataDir != h.dataDir ||
		got.TLSCert != "c" || got.TLSKey != "k" {
		t.Fatalf("config %+v", got)
	}
	if !strings.Contains(h.stderr.String(), `"memory_limit"`) {
		t.Errorf("start-up log (json) lacks the memory limit: %s", h.stderr.String())
	}
}

func TestServeFailures(t *testing.T) {
	h := newHarness(t) // runServer fails the test if called
	if code := h.run("serve", "--server-name", "not a name"); code != exitFailure {
		t.Fatalf("invalid config: exit %d", code)
	}
	if !strings.Contains(h.stderr.String(), "server_name") {
		t.Errorf("stderr %q", h.stderr.String())
	}

	h = newHarness(t)
	h.d.runServer = func(context.Context, config.Config, *slog.Logger) error { return errors.New("port taken") }
	if code := h.run("serve"); code != exitFailure || !strings.Contains(h.stderr.String(), "hearth: serve: port taken") {
		t.Fatalf("exit %d, stderr %q", code, h.stderr.String())
	}
}

func TestConfigCheck(t *testing.T) {
	h := newHarness(t)
	if code := h.run("config", "check"); code != exitOK || h.stdout.String() != "config ok\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, h.stdout.String(), h.stderr.String())
	}

	h = newHarness(t)
	code := h.run("config", "check", "--listen", "nowhere", "--tls-cert", "c.pem")
	if code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"listen", "tls_cert and tls_key"} {
		if !strings.Contains(h.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, h.stderr.String())
		}
	}

	h = newHarness(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("servername: x\n"), 0o600)
	if code := h.run("config", "check", "--config", bad); code != exitFailure ||
		!strings.Contains(h.stderr.String(), "servername") {
		t.Fatalf("exit %d, stderr %q", code, h.stderr.String())
	}
}
