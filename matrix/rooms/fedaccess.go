package rooms

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// This file decides what a remote server may read of a room: the server ACL
// (m.room.server_acl) and the history-visibility rules applied to a server rather than a user.

// serverOf is the server part of a user ID ("" if it has none).
func serverOf(user string) string {
	return id.UserID(user).Homeserver()
}

// ServerAllowedByACL applies the room's current m.room.server_acl to server, in the order the
// spec lists (no ACL: allow; IP literal with allow_ip_literals false: deny; deny list; allow
// list; otherwise deny). The port is not considered.
func ServerAllowedByACL(aclContent json.RawMessage, server string) bool {
	if aclContent == nil {
		return true
	}
	var c struct {
		Allow           []any `json:"allow"`
		Deny            []any `json:"deny"`
		AllowIPLiterals any   `json:"allow_ip_literals"`
	}
	if json.Unmarshal(aclContent, &c) != nil {
		// Content that is not an object allows nothing: the allow list defaults to empty.
		return false
	}
	host := hostOf(server)
	if b, ok := c.AllowIPLiterals.(bool); ok && !b && isIPLiteral(host) {
		return false
	}
	for _, p := range c.Deny {
		if s, ok := p.(string); ok && globMatch(strings.ToLower(s), host) {
			return false
		}
	}
	for _, p := range c.Allow {
		if s, ok := p.(string); ok && globMatch(strings.ToLower(s), host) {
			return true
		}
	}
	return false
}

// hostOf lower-cases a server name and strips its port (also from "[v6]:port").
func hostOf(server string) string {
	s := strings.ToLower(server)
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]"); i > 0 {
			return s[:i+1]
		}
		return s
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		return s[:i]
	}
	return s
}

func isIPLiteral(host string) bool {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	_, err := netip.ParseAddr(h)
	return err == nil
}

// globMatch matches s against a Matrix glob (* any run, ? one character), iteratively with
// one backtrack point, so a hostile pattern cannot make it exponential.
func globMatch(pattern, s string) bool {
	p, q := []rune(pattern), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(q) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == q[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// checkACL answers 403 M_FORBIDDEN when the room's current server ACL denies server.
func (s *Service) checkACL(txn *store.Txn, nid uint64, server string) error {
	rec, err := s.currentStateEvent(txn, nid, "m.room.server_acl", "")
	if err != nil {
		return err
	}
	if rec == nil {
		return nil
	}
	var p struct {
		Content json.RawMessage `json:"content"`
	}
	_ = json.Unmarshal(rec.PDU, &p)
	if p.Content == nil {
		p.Content = json.RawMessage("{}")
	}
	if !ServerAllowedByACL(p.Content, server) {
		return merr.Forbidden("server %s is denied by the room's server ACL", server)
	}
	return nil
}

// serverState is what the visibility rules need of one state snapshot for one server.
type serverState struct {
	joined, invited bool
	visibility      string
}

// ServerViewer applies the history-visibility rules to a remote server: the server may see
// an event if any of its users could (world_readable; a member joined at the event; invited
// at the event under "invited"; under "shared", the server is in the room now, which is how a
// server that joined later backfills the history before its join).
type ServerViewer struct {
	txn    *store.Txn
	room   uint64
	server string
	// memberSKs are the state-key NIDs of the server's users' member events, taken from the
	// current state, which keeps every member key the room has had.
	memberSKs []uint64
	visSK     uint64
	now       serverState // the current state
	cache     map[uint64]serverState
}

// newServerViewer prepares checks for server in room.
func newServerViewer(txn *store.Txn, room uint64, server string) (*ServerViewer, error) {
	v := &ServerViewer{txn: txn, room: room, server: server, cache: map[uint64]serverState{}}
	var err error
	if v.visSK, err = txn.StateKeyNID("m.room.history_visibility", "", false); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	err = txn.AllCurrentState(room, func(sk, pos uint64) (bool, error) {
		typ, key, err := txn.StateKeyOf(sk)
		if err != nil {
			return false, err
		}
		if typ == "m.room.member" && serverOf(key) == server {
			v.memberSKs = append(v.memberSKs, sk)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	rec, err := txn.Room(room)
	if err != nil {
		return nil, err
	}
	if v.now, err = v.at(rec.Snapshot); err != nil {
		return nil, err
	}
	return v, nil
}

// at reads the server's memberships and the history visibility of one snapshot.
func (v *ServerViewer) at(snapshot uint64) (serverState, error) {
	if st, ok := v.cache[snapshot]; ok {
		return st, nil
	}
	st := serverState{visibility: "shared"}
	content := func(sk uint64) (map[string]any, error) {
		pos, err := snapshotLookup(v.txn, snapshot, sk)
		if err != nil || pos == 0 {
			return nil, err
		}
		rec, err := v.txn.Event(pos)
		if err != nil {
			return nil, err
		}
		var p struct {
			Content map[string]any `json:"content"`
		}
		_ = json.Unmarshal(rec.PDU, &p)
		return p.Content, nil
	}
	for _, sk := range v.memberSKs {
		c, err := content(sk)
		if err != nil {
			return st, err
		}
		switch str(c["membership"]) {
		case "join":
			st.joined = true
		case "invite":
			st.invited = true
		}
	}
	if v.visSK != 0 {
		c, err := content(v.visSK)
		if err != nil {
			return st, err
		}
		// An unknown value counts as "shared", as the spec says.
		switch hv := str(c["history_visibility"]); hv {
		case "world_readable", "joined", "invited", "shared":
			st.visibility = hv
		}
	}
	v.cache[snapshot] = st
	return st, nil
}

func (v *ServerViewer) allows(st serverState) bool {
	switch {
	case st.visibility == "world_readable", st.joined:
		return true
	case st.visibility == "invited" && st.invited:
		return true
	case st.visibility == "shared" && v.now.joined:
		return true
	}
	return false
}

// CanSee reports whether the server may see e. For history-visibility events and the
// server's own users' member events the state before or after the event may allow it.
func (v *ServerViewer) CanSee(e *Event) (bool, error) {
	if e.Rec.Flags&store.FlagRejected != 0 {
		return false, nil
	}
	st, err := v.at(e.Rec.Snapshot)
	if err != nil || v.allows(st) {
		return err == nil, err
	}
	own := e.Lite.Type == "m.room.member" && e.Lite.StateKey != nil && serverOf(*e.Lite.StateKey) == v.server
	if (own || e.Lite.Type == "m.room.history_visibility") && e.Rec.After != e.Rec.Snapshot {
		after, err := v.at(e.Rec.After)
		if err != nil {
			return false, err
		}
		return v.allows(after), nil
	}
	return false, nil
}

// InRoom reports whether the server may read the room at all now: one of its users is joined
// or invited, or the room is world-readable.
func (v *ServerViewer) InRoom() bool {
	return v.now.joined || v.now.invited || v.now.visibility == "world_readable"
}
