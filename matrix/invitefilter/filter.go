package invitefilter

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Account-data types read by Load.
const (
	StableType   = "m.invite_permission_config"
	UnstableType = "org.matrix.msc4155.invite_permission_config"
)

// ErrCode is the errcode of a refused invite (spec v1.18).
const ErrCode = "M_INVITE_BLOCKED"

// Action is the verdict on one invite.
type Action int

// The verdicts, from most to least permissive.
const (
	Allow  Action = iota // shown as usual
	Ignore               // accepted, never shown to the invitee
	Block                // refused; never shown if stored anyway
)

func (a Action) String() string {
	switch a {
	case Ignore:
		return "ignore"
	case Block:
		return "block"
	}
	return "allow"
}

// rule is one glob with the verdict it gives.
type rule struct {
	glob   string // lower-cased
	action Action
}

// Config is one user's invite permission. The nil *Config allows everything.
type Config struct {
	blockAll bool
	users    []rule // allowed, then ignored, then blocked
	servers  []rule
}

// Parse reads the stable and the unstable event's content (either may be nil). Malformed
// content is treated as absent, as the spec asks of invalid values.
func Parse(stable, unstable json.RawMessage) *Config {
	c := &Config{}
	if len(stable) > 0 {
		var s struct {
			DefaultAction any `json:"default_action"`
		}
		if json.Unmarshal(stable, &s) == nil {
			c.blockAll = s.DefaultAction == "block"
		}
	}
	if len(unstable) > 0 {
		var u map[string]json.RawMessage
		if json.Unmarshal(unstable, &u) == nil {
			c.users = appendRules(c.users, u["allowed_users"], Allow)
			c.users = appendRules(c.users, u["ignored_users"], Ignore)
			c.users = appendRules(c.users, u["blocked_users"], Block)
			c.servers = appendRules(c.servers, u["allowed_servers"], Allow)
			c.servers = appendRules(c.servers, u["ignored_servers"], Ignore)
			c.servers = appendRules(c.servers, u["blocked_servers"], Block)
		}
	}
	if !c.blockAll && len(c.users) == 0 && len(c.servers) == 0 {
		return nil
	}
	return c
}

// appendRules adds the non-empty strings of a JSON list; anything else adds nothing.
func appendRules(out []rule, raw json.RawMessage, a Action) []rule {
	var list []any
	if len(raw) == 0 || json.Unmarshal(raw, &list) != nil {
		return out
	}
	for _, v := range list {
		if s, ok := v.(string); ok && s != "" {
			out = append(out, rule{glob: strings.ToLower(s), action: a})
		}
	}
	return out
}

// Decide gives the verdict on an invite sent by inviter (a full user ID).
func (c *Config) Decide(inviter string) Action {
	if c == nil {
		return Allow
	}
	if c.blockAll {
		return Block
	}
	user := strings.ToLower(inviter)
	for _, r := range c.users {
		if match(r.glob, user) {
			return r.action
		}
	}
	if len(c.servers) > 0 {
		server := serverOf(user)
		host := stripPort(server)
		for _, r := range c.servers {
			if match(r.glob, host) || (host != server && match(r.glob, server)) {
				return r.action
			}
		}
	}
	return Allow
}

// serverOf is the server name of a user ID: everything after the first colon.
func serverOf(user string) string {
	_, s, _ := strings.Cut(user, ":")
	return s
}

// stripPort drops a trailing :port from a server name (an IPv6 literal keeps its brackets).
func stripPort(server string) string {
	i := strings.LastIndexByte(server, ':')
	if i < 0 || strings.IndexByte(server[i:], ']') >= 0 {
		return server
	}
	if strings.HasPrefix(server, "[") || strings.Count(server, ":") == 1 {
		return server[:i]
	}
	return server // a bare IPv6 address without brackets has no port
}

// match reports whether the whole of s matches the glob (* any run, ? one character),
// comparing runes. The greedy two-cursor walk backtracks only to the last star, so a hostile
// pattern costs at most len(glob)*len(s) steps.
func match(glob, s string) bool {
	g, t := []rune(glob), []rune(s)
	gi, ti := 0, 0
	star, mark := -1, 0
	for ti < len(t) {
		switch {
		case gi < len(g) && (g[gi] == '?' || g[gi] == t[ti]):
			gi++
			ti++
		case gi < len(g) && g[gi] == '*':
			star, mark = gi, ti
			gi++
		case star >= 0:
			gi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for gi < len(g) && g[gi] == '*' {
		gi++
	}
	return gi == len(g)
}

// Load reads user's invite permission inside a transaction (nil when there is none).
func Load(txn *store.Txn, user string) (*Config, error) {
	stable, err := content(txn, user, StableType)
	if err != nil {
		return nil, err
	}
	unstable, err := content(txn, user, UnstableType)
	if err != nil {
		return nil, err
	}
	return Parse(stable, unstable), nil
}

func content(txn *store.Txn, user, typ string) (json.RawMessage, error) {
	rec, err := txn.AccountData(user, 0, typ)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("invite permission of %s: %w", user, err)
	}
	return rec.Content, nil
}

// Check refuses (403 M_INVITE_BLOCKED) an invite of the local user invitee by inviter when the
// invitee blocks it; an ignored invite passes (it is hidden later, by Hides).
func Check(txn *store.Txn, invitee, inviter string) error {
	c, err := Load(txn, invitee)
	if err != nil {
		return err
	}
	if c.Decide(inviter) == Block {
		return Refusal(invitee)
	}
	return nil
}

// Refusal is the error for an invite that invitee blocks.
func Refusal(invitee string) *merr.Error {
	return &merr.Error{Status: http.StatusForbidden, Code: ErrCode, Message: fmt.Sprintf("%s does not accept this invite", invitee)}
}

// IsRefusal reports whether err is a blocked invite, from this server or a remote one.
func IsRefusal(err error) bool {
	me, ok := merr.As(err)
	return ok && me.Code == ErrCode
}

// Hides reports whether an invite of user by inviter must be left out of user's /sync
// (ignored or blocked).
func Hides(txn *store.Txn, user, inviter string) (bool, error) {
	c, err := Load(txn, user)
	if err != nil {
		return false, err
	}
	return c.Decide(inviter) != Allow, nil
}
