package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAdmin records calls and answers from its fields.
type fakeAdmin struct {
	mu    sync.Mutex
	calls []string
	users []UserInfo
	err   error
	block chan struct{} // if set, ListUsers waits for it or ctx
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

func (f *fakeAdmin) ListUsers(ctx context.Context) ([]UserInfo, error) {
	f.record("list")
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
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
	return "tok", f.err
}

func serve(t *testing.T, admin Admin) (*Server, string) {
	t.Helper()
	path := SocketPath(t.TempDir())
	s, err := Serve(t.Context(), path, admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func TestRoundTrip(t *testing.T) {
	fake := &fakeAdmin{users: []UserInfo{{UserID: "@a:test", Admin: true}, {UserID: "@b:test", Deactivated: true}}}
	_, path := serve(t, fake)
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if id, err := c.AddUser(ctx, "alice", "pw", true); err != nil || id != "@alice:test" {
		t.Fatalf("AddUser = %q, %v", id, err)
	}
	users, err := c.ListUsers(ctx)
	if err != nil || !reflect.DeepEqual(users, fake.users) {
		t.Fatalf("ListUsers = %+v, %v", users, err)
	}
	if err := c.SetPassword(ctx, "alice", "new"); err != nil {
		t.Fatal(err)
	}
	if err := c.Deactivate(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if tok, err := c.CreateToken(ctx, 3, 2*time.Hour); err != nil || tok != "tok" {
		t.Fatalf("CreateToken = %q, %v", tok, err)
	}
	want := []string{"add alice pw true", "list", "passwd alice new", "deactivate bob", "token 3 2h0m0s"}
	if !reflect.DeepEqual(fake.calls, want) {
		t.Fatalf("calls %q, want %q", fake.calls, want)
	}
}

func TestEmptyListIsEmptySlice(t *testing.T) {
	_, path := serve(t, &fakeAdmin{})
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	users, err := c.ListUsers(t.Context())
	if err != nil || users == nil || len(users) != 0 {
		t.Fatalf("ListUsers = %#v, %v", users, err)
	}
}

func TestErrorsCrossTheSocket(t *testing.T) {
	_, path := serve(t, &fakeAdmin{err: errors.New("user alice already exists")})
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AddUser(t.Context(), "alice", "pw", false)
	if err == nil || err.Error() != "user alice already exists" {
		t.Fatalf("err = %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	_, path := serve(t, &fakeAdmin{})
	for _, line := range []string{`{"op":"launch"}`, `not json`, `{"op":"user.list","extra":1}`} {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(conn, line)
		buf := make([]byte, 512)
		n, _ := conn.Read(buf)
		conn.Close()
		if got := string(buf[:n]); !strings.HasPrefix(got, `{"ok":false,"error":`) {
			t.Errorf("%s -> %s", line, got)
		}
	}
}

func TestSocketMode(t *testing.T) {
	_, path := serve(t, &fakeAdmin{})
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want a 0600 socket", fi.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("leftovers beside the socket: %v", entries)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := SocketPath(t.TempDir())
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false) // simulate a crash: the file stays, nobody listens
	ln.Close()
	if _, err := Dial(path); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Dial on a stale socket: %v, want ErrNotRunning", err)
	}
	s, err := Serve(t.Context(), path, &fakeAdmin{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Dial(path); err != nil {
		t.Fatal(err)
	}
}

func TestLiveServerIsNotStolen(t *testing.T) {
	_, path := serve(t, &fakeAdmin{})
	if _, err := Serve(t.Context(), path, &fakeAdmin{}, nil); err == nil {
		t.Fatal("second Serve on a live socket succeeded")
	}
	if _, err := Dial(path); err != nil {
		t.Fatalf("first server disturbed: %v", err)
	}
}

func TestRefusesToRemoveNonSocket(t *testing.T) {
	path := SocketPath(t.TempDir())
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Serve(t.Context(), path, &fakeAdmin{}, nil); err == nil {
		t.Fatal("Serve replaced a regular file")
	}
}

func TestDialNothing(t *testing.T) {
	_, err := Dial(SocketPath(t.TempDir()))
	if !errors.Is(err, ErrNotRunning) {
		t.Fatalf("err = %v, want ErrNotRunning", err)
	}
}

func TestCancelStopsAndRemovesSocket(t *testing.T) {
	path := SocketPath(t.TempDir())
	fake := &fakeAdmin{block: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	s, err := Serve(ctx, path, fake, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.ListUsers(t.Context()); done <- err }()
	for !slicesContains(fake, "list") {
		time.Sleep(time.Millisecond)
	}
	cancel() // the blocked request must be aborted, not waited for
	if err := <-done; err == nil {
		t.Fatal("request in flight succeeded after shutdown")
	}
	_ = s.Close() // waits for the AfterFunc's Close to finish
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still present: %v", err)
	}
	if _, err := Dial(path); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Dial after shutdown: %v", err)
	}
}

func TestClientContextCancel(t *testing.T) {
	_, path := serve(t, &fakeAdmin{block: make(chan struct{})})
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.ListUsers(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func slicesContains(f *fakeAdmin, call string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == call {
			return true
		}
	}
	return false
}
