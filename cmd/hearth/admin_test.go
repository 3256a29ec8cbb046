package main

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/control"
)

// online starts a real control socket in the harness's data directory, backed by fake.
func (h *harness) online(t *testing.T, fake *fakeAdmin) {
	s, err := control.Serve(t.Context(), control.SocketPath(h.dataDir), fake, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
}

// offline lets the harness open the store, backed by fake, and counts closes.
func (h *harness) offline(t *testing.T, fake *fakeAdmin) *int {
	closed := new(int)
	h.d.openOffline = func(cfg config.Config, _ *slog.Logger) (control.Admin, func() error, error) {
		if cfg.DataDir != h.dataDir {
			t.Errorf("offline store in %s, want %s", cfg.DataDir, h.dataDir)
		}
		return fake, func() error { *closed++; return nil }, nil
	}
	return closed
}

func TestUserAddOnline(t *testing.T) {
	h := newHarness(t)
	fake := &fakeAdmin{}
	h.online(t, fake) // openOffline still fails the test
	h.d.stdin = strings.NewReader("s3cret pass\r\n")
	if code := h.run("user", "add", "alice", "--admin", "--password-stdin"); code != exitOK {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	if h.stdout.String() != "@alice:test\n" {
		t.Errorf("stdout %q", h.stdout.String())
	}
	if want := []string{"add alice s3cret pass true"}; !reflect.DeepEqual(fake.calls, want) {
		t.Errorf("calls %q, want %q", fake.calls, want)
	}
}

func TestUserAddOffline(t *testing.T) {
	h := newHarness(t)
	fake := &fakeAdmin{}
	closed := h.offline(t, fake)
	h.d.stdin = strings.NewReader("pw\n") // not a terminal: one line, no flag needed
	if code := h.run("user", "add", "--data", h.dataDir, "bob"); code != exitOK {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	if want := []string{"add bob pw false"}; !reflect.DeepEqual(fake.calls, want) {
		t.Errorf("calls %q, want %q", fake.calls, want)
	}
	if *closed != 1 {
		t.Errorf("store closed %d times, want 1", *closed)
	}
}

func TestOfflineStoreClosedOnError(t *testing.T) {
	h := newHarness(t)
	closed := h.offline(t, &fakeAdmin{err: errors.New("no such user")})
	if code := h.run("user", "deactivate", "carol"); code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	if *closed != 1 || !strings.Contains(h.stderr.String(), "hearth: user deactivate: no such user") {
		t.Fatalf("closed %d, stderr %q", *closed, h.stderr.String())
	}
}

func TestUnreachableServerDoesNotOpenStore(t *testing.T) {
	h := newHarness(t) // openOffline fails the test
	h.d.dial = func(string) (control.Admin, error) { return nil, errors.New("permission denied") }
	if code := h.run("user", "list"); code != exitFailure {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(h.stderr.String(), "permission denied") {
		t.Errorf("stderr %q", h.stderr.String())
	}
}

func TestUserListTable(t *testing.T) {
	h := newHarness(t)
	h.online(t, &fakeAdmin{users: []control.UserInfo{
		{UserID: "@zed:test", Deactivated: true},
		{UserID: "@alice:test", Admin: true},
	}})
	if code := h.run("user", "list"); code != exitOK {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	want := "USER ID      ADMIN  DEACTIVATED\n" +
		"@alice:test  yes    no\n" +
		"@zed:test    no     yes\n"
	if h.stdout.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", h.stdout.String(), want)
	}
}

func TestUserPasswdPrompt(t *testing.T) {
	h := newHarness(t)
	fake := &fakeAdmin{}
	h.online(t, fake)
	h.d.term = &fakeTerm{lines: []string{"n3w", "n3w"}}
	if code := h.run("user", "passwd", "alice"); code != exitOK {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	if want := []string{"passwd alice n3w"}; !reflect.DeepEqual(fake.calls, want) {
		t.Errorf("calls %q", fake.calls)
	}
	if !strings.Contains(h.stderr.String(), "Repeat password:") {
		t.Errorf("no second prompt: %q", h.stderr.String())
	}
}

func TestPasswordProblems(t *testing.T) {
	cases := map[string]struct {
		term  *fakeTerm
		stdin string
		want  string
	}{
		"mismatch":     {term: &fakeTerm{lines: []string{"a", "b"}}, want: "passwords do not match"},
		"empty typed":  {term: &fakeTerm{lines: []string{""}}, want: "empty password"},
		"empty stdin":  {stdin: "\n", want: "empty password"},
		"closed stdin": {stdin: "", want: "no password on standard input"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			fake := &fakeAdmin{}
			h.online(t, fake)
			h.d.term = tc.term
			h.d.stdin = strings.NewReader(tc.stdin)
			if code := h.run("user", "add", "alice"); code != exitFailure {
				t.Fatalf("exit %d", code)
			}
			if !strings.Contains(h.stderr.String(), tc.want) || len(fake.calls) != 0 {
				t.Fatalf("stderr %q, calls %q", h.stderr.String(), fake.calls)
			}
		})
	}
}

func TestTokenCreate(t *testing.T) {
	h := newHarness(t)
	fake := &fakeAdmin{}
	h.online(t, fake)
	if code := h.run("token", "create", "--uses", "5", "--expires", "72h"); code != exitOK {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	if h.stdout.String() != "tok123\n" {
		t.Errorf("stdout %q", h.stdout.String())
	}
	if want := []string{"token 5 72h0m0s"}; !reflect.DeepEqual(fake.calls, want) {
		t.Errorf("calls %q", fake.calls)
	}
}
