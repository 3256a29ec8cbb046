package rooms

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestServerAllowedByACL(t *testing.T) {
	acl := func(v any) json.RawMessage {
		b, _ := json.Marshal(v)
		return b
	}
	std := acl(map[string]any{"allow": []string{"*"}, "deny": []string{"*.evil.test", "evil.test", "1.2.3.?"}, "allow_ip_literals": false})
	cases := []struct {
		content json.RawMessage
		server  string
		want    bool
	}{
		{nil, "anything.test", true}, // no ACL in the room
		{std, "good.test", true},
		{std, "good.test:8448", true},
		{std, "evil.test", false},
		{std, "EVIL.test:1234", false}, // case-insensitive, port ignored
		{std, "sub.evil.test", false},
		{std, "notevil.test", true},
		{std, "1.2.3.4", false},                                         // IP literals refused by allow_ip_literals
		{std, "[::1]:8448", false},                                      // so is an IPv6 literal
		{acl(map[string]any{"allow": []string{"*"}}), "10.0.0.1", true}, // allowed by default
		{acl(map[string]any{"allow": []string{"*"}, "allow_ip_literals": "no"}), "10.0.0.1", true}, // not a boolean: default
		{acl(map[string]any{"deny": []string{}}), "good.test", false},                              // no allow list: nobody
		{acl(map[string]any{"allow": []string{"good.test", "?ood.test"}}), "food.test", true},
		{acl(map[string]any{"allow": []string{"good.test"}}), "food.test", false},
		{acl(map[string]any{"allow": []any{42, "good.*"}}), "good.test", true}, // non-strings ignored
		{json.RawMessage(`"not an object"`), "good.test", false},
	}
	for _, c := range cases {
		if got := ServerAllowedByACL(c.content, c.server); got != c.want {
			t.Errorf("ACL %s, server %s: allowed=%v, want %v", c.content, c.server, got, c.want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*c", "abbbc", true}, {"a*c", "abcd", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*.b.*", "x.b.y", true}, {"", "", true}, {"", "a", false},
		{"**a", "bba", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false},
	}
	for _, c := range cases {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

// BenchmarkGlobMatchHostile: many stars against a long non-matching name (the matcher keeps
// one backtrack point, so this is linear in pattern times name, never exponential).
func BenchmarkGlobMatchHostile(b *testing.B) {
	p, s := strings.Repeat("*a", 200)+"b", strings.Repeat("a", 5000)
	for b.Loop() {
		if globMatch(p, s) {
			b.Fatal("matched")
		}
	}
}
