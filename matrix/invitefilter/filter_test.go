package invitefilter

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		glob, s string
		want    bool
	}{
		{"hs2", "hs2", true},
		{"hs2", "hs22", false},
		{"hs*", "hs1", true},
		{"hs*", "xhs1", false},
		{"*", "", true},
		{"?", "", false},
		{"@user-?*", "@user-1-hs1:hs1", true},
		{"@user-?*", "@user-", false},
		{"*.example.org", "matrix.example.org", true},
		{"*.example.org", "example.org", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"*x", "xxxxxxxxxxxxxxxxxxy", false},
		{"ä?", "äö", true}, // runes, not bytes
	} {
		if got := match(c.glob, c.s); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.glob, c.s, got, c.want)
		}
	}
}

func TestMatchHostileIsBounded(t *testing.T) {
	// A pattern of many stars against a long non-matching string must not explode.
	glob := strings.Repeat("*a", 200) + "b"
	s := strings.Repeat("a", 5000)
	if match(glob, s) {
		t.Fatal("matched a string without b")
	}
}

func TestStripPort(t *testing.T) {
	for in, want := range map[string]string{
		"hs2": "hs2", "hs2:8448": "hs2", "[::1]:8448": "[::1]", "[::1]": "[::1]", "::1": "::1", "1.2.3.4:80": "1.2.3.4",
	} {
		if got := stripPort(in); got != want {
			t.Errorf("stripPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecide(t *testing.T) {
	cfg := func(stable, unstable string) *Config {
		var s, u json.RawMessage
		if stable != "" {
			s = json.RawMessage(stable)
		}
		if unstable != "" {
			u = json.RawMessage(unstable)
		}
		return Parse(s, u)
	}
	for _, c := range []struct {
		name, stable, unstable, inviter string
		want                            Action
	}{
		{"nothing", "", "", "@bob:hs2", Allow},
		{"stable block", `{"default_action":"block"}`, "", "@bob:hs2", Block},
		{"stable block beats unstable allow", `{"default_action":"block"}`, `{"allowed_users":["@bob:hs2"]}`, "@bob:hs2", Block},
		{"stable unknown action", `{"default_action":"deny"}`, "", "@bob:hs2", Allow},
		{"stable wrong type", `{"default_action":1}`, "", "@bob:hs2", Allow},
		{"stable without action (unblocked)", `{}`, "", "@bob:hs2", Allow},
		{"stable malformed", `[`, "", "@bob:hs2", Allow},
		{"block user", "", `{"blocked_users":["@bob:hs2"]}`, "@bob:hs2", Block},
		{"block other user", "", `{"blocked_users":["@bob:hs2"]}`, "@eve:hs2", Allow},
		{"ignore user", "", `{"ignored_users":["@bob:hs2"]}`, "@bob:hs2", Ignore},
		{"case-insensitive", "", `{"blocked_users":["@BOB:HS2"]}`, "@bob:hs2", Block},
		{"block server", "", `{"blocked_servers":["hs2"]}`, "@bob:hs2", Block},
		{"block server, port ignored", "", `{"blocked_servers":["hs2"]}`, "@bob:hs2:8448", Block},
		{"block server with its port", "", `{"blocked_servers":["hs2:8448"]}`, "@bob:hs2:8448", Block},
		{"ignore server", "", `{"ignored_servers":["hs2"]}`, "@bob:hs2", Ignore},
		{"server glob", "", `{"blocked_servers":["hs*"]}`, "@bob:hs1", Block},
		{"server glob never sees the localpart", "", `{"blocked_servers":["bob*"]}`, "@bob:hs1", Allow},
		{"allowed user beats blocked server", "", `{"allowed_users":["@bob:hs2"],"blocked_servers":["hs2"]}`, "@bob:hs2", Allow},
		{"blocked user beats allowed server", "", `{"blocked_users":["@eve:hs2"],"allowed_servers":["hs2"]}`, "@eve:hs2", Block},
		{"allowed beats ignored", "", `{"ignored_users":["@bob:hs2"],"allowed_users":["@bob:hs2"]}`, "@bob:hs2", Allow},
		{"allowed beats blocked", "", `{"blocked_users":["@bob:hs2"],"allowed_users":["@bob:hs2"]}`, "@bob:hs2", Allow},
		{"ignored beats blocked", "", `{"blocked_users":["@bob:*"],"ignored_users":["@bob:hs2"]}`, "@bob:hs2", Ignore},
		{"ignored server beats blocked server", "", `{"blocked_servers":["*"],"ignored_servers":["hs2"]}`, "@bob:hs2", Ignore},
		{"user rules before server rules", "", `{"ignored_users":["@bob:hs2"],"allowed_servers":["hs2"]}`, "@bob:hs2", Ignore},
		{"nulls ignored", "", `{"allowed_users":null,"ignored_users":null,"blocked_users":null,"allowed_servers":null,"ignored_servers":null,"blocked_servers":null}`, "@bob:hs2", Allow},
		{"non-strings ignored", "", `{"blocked_users":[1,null,"",{"a":1}]}`, "@bob:hs2", Allow},
		{"not a list", "", `{"blocked_users":"@bob:hs2"}`, "@bob:hs2", Allow},
		{"unstable malformed", "", `"x"`, "@bob:hs2", Allow},
		{"deleted ({})", `{}`, `{}`, "@bob:hs2", Allow},
	} {
		if got := cfg(c.stable, c.unstable).Decide(c.inviter); got != c.want {
			t.Errorf("%s: Decide(%s) = %v, want %v", c.name, c.inviter, got, c.want)
		}
	}
}

func TestRefusal(t *testing.T) {
	err := Refusal("@alice:hs1")
	if err.Status != 403 || err.Code != "M_INVITE_BLOCKED" {
		t.Fatalf("refusal = %d %s", err.Status, err.Code)
	}
	if !IsRefusal(err) || IsRefusal(nil) {
		t.Fatal("IsRefusal")
	}
}
