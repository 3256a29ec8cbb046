package clientapi_test

import (
	"net/http"
	"testing"

	"maunium.net/go/mautrix"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// A pusher set by a session goes away with that session's device (logout, deletion or a
// password change that logs the other devices out), and stays while the device exists.
func TestPusherRemovedWithItsDevice(t *testing.T) {
	srv := testserver.Start(t)
	alice := srv.Register(t, "alice", false)
	second, err := alice.Login(t.Context(), &mautrix.ReqLogin{Type: mautrix.AuthTypePassword, Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: "alice"}, Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}
	pusher := `{"kind":"http","app_id":"org.example.app","pushkey":"k1","app_display_name":"App","device_display_name":"Phone","lang":"en","data":{"url":"https://push.example.org/_matrix/push/v1/notify"}}`
	if st, body := srv.Raw(t, http.MethodPost, "/_matrix/client/v3/pushers/set", second.AccessToken, pusher); st != 200 {
		t.Fatalf("set pusher: %d %v", st, body)
	}
	count := func() int {
		st, body := srv.Raw(t, http.MethodGet, "/_matrix/client/v3/pushers", alice.AccessToken, "")
		if st != 200 {
			t.Fatalf("get pushers: %d %v", st, body)
		}
		list, _ := body["pushers"].([]any)
		return len(list)
	}
	if n := count(); n != 1 {
		t.Fatalf("pushers before logout = %d, want 1", n)
	}
	if st, body := srv.Raw(t, http.MethodPost, "/_matrix/client/v3/logout", second.AccessToken, "{}"); st != 200 {
		t.Fatalf("logout: %d %v", st, body)
	}
	for i := 0; i < 100 && count() != 0; i++ {
		waitABit()
	}
	if n := count(); n != 0 {
		t.Fatalf("pushers after the device logged out = %d, want 0", n)
	}
}
