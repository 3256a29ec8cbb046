package rooms

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/store"
)

// The user directory (spec: users.yaml, POST /user_directory/search). A user finds the users
// who share a joined room with them and the users joined to public rooms (join rule public, or
// history world-readable), as Synapse does without search_all_users. Local users are shown and
// matched by their global profile only, never by a per-room display name (which would tell
// strangers what a user calls themselves in a private room); remote users by their member
// event. The searcher is left out of their own results.
//
// There is no index: a home server has few rooms, and one search reads the searcher's
// memberships, the join rules of the other rooms and the member events of the matching ones.

// maxUserDirectoryLimit bounds one search's results.
const maxUserDirectoryLimit = 100

// DirectoryUser is one user directory result.
type DirectoryUser struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// SearchUsers returns up to limit users visible to searcher whose user ID or display name
// contains term (case-insensitively), best matches first, and whether more matched.
func (s *Service) SearchUsers(ctx context.Context, searcher id.UserID, term string, limit int) ([]DirectoryUser, bool, error) {
	term = strings.ToLower(strings.TrimSpace(term))
	if limit <= 0 {
		limit = 10
	}
	limit = min(limit, maxUserDirectoryLimit)
	if term == "" {
		return []DirectoryUser{}, false, nil
	}
	candidates := map[string]DirectoryUser{} // from member events; local users' get replaced
	err := s.st.View(func(txn *store.Txn) error {
		shared := map[uint64]bool{}
		err := txn.Memberships(searcher.String(), func(m store.Membership) (bool, error) {
			if m.Membership == "join" {
				shared[m.Room] = true
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		return txn.Rooms(func(nid uint64, _ *store.RoomRecord) (bool, error) {
			if !shared[nid] {
				public, err := s.publicForDirectory(txn, nid)
				if err != nil || !public {
					return err == nil, err
				}
			}
			return true, joinedProfiles(txn, nid, candidates)
		})
	})
	if err != nil {
		return nil, false, err
	}
	type hit struct {
		u    DirectoryUser
		rank int
	}
	var hits []hit
	for uid, u := range candidates {
		if uid == searcher.String() {
			continue
		}
		if s.IsLocal(id.UserID(uid)) && s.prof != nil {
			dn, av, err := s.prof.Profile(ctx, id.UserID(uid))
			if err != nil {
				continue // deactivated or gone
			}
			u.DisplayName, u.AvatarURL = dn, av
		}
		if r, ok := matchRank(term, u); ok {
			hits = append(hits, hit{u, r})
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		return cmp.Compare(a.u.UserID, b.u.UserID)
	})
	out := make([]DirectoryUser, 0, min(len(hits), limit))
	for _, h := range hits[:min(len(hits), limit)] {
		out = append(out, h.u)
	}
	return out, len(hits) > limit, nil
}

// matchRank reports whether u matches term and how well: an exact localpart or display name
// first, then prefixes, then a word of the display name, then any substring.
func matchRank(term string, u DirectoryUser) (int, bool) {
	uid := strings.ToLower(u.UserID)
	local := strings.TrimPrefix(uid, "@")
	if i := strings.IndexByte(local, ':'); i >= 0 {
		local = local[:i]
	}
	dn := strings.ToLower(u.DisplayName)
	switch {
	case local == term || dn == term || uid == term:
		return 0, true
	case strings.HasPrefix(local, term) || strings.HasPrefix(dn, term) || strings.HasPrefix(uid, term):
		return 1, true
	}
	for _, w := range strings.Fields(dn) {
		if strings.HasPrefix(w, term) {
			return 2, true
		}
	}
	if strings.Contains(uid, term) || strings.Contains(dn, term) {
		return 3, true
	}
	return 0, false
}

// publicForDirectory reports whether a room's members are listed to everyone: its join rule is
// public or its history is world-readable.
func (s *Service) publicForDirectory(txn *store.Txn, nid uint64) (bool, error) {
	for _, c := range []struct{ typ, field, want string }{
		{"m.room.join_rules", "join_rule", "public"},
		{"m.room.history_visibility", "history_visibility", "world_readable"},
	} {
		rec, err := s.currentStateEvent(txn, nid, c.typ, "")
		if err != nil {
			return false, err
		}
		if rec == nil {
			continue
		}
		var p struct {
			Content map[string]any `json:"content"`
		}
		_ = json.Unmarshal(rec.PDU, &p)
		if v, _ := p.Content[c.field].(string); v == c.want {
			return true, nil
		}
	}
	return false, nil
}

// joinedProfiles adds the room's joined members, with their member-event profile, to into.
func joinedProfiles(txn *store.Txn, nid uint64, into map[string]DirectoryUser) error {
	return txn.AllCurrentState(nid, func(sk, pos uint64) (bool, error) {
		typ, user, err := txn.StateKeyOf(sk)
		if err != nil {
			return false, err
		}
		if typ != "m.room.member" {
			return true, nil
		}
		if _, seen := into[user]; seen {
			return true, nil
		}
		rec, err := txn.Event(pos)
		if err != nil {
			return false, err
		}
		var p struct {
			Content struct {
				Membership  any `json:"membership"`
				DisplayName any `json:"displayname"`
				AvatarURL   any `json:"avatar_url"`
			} `json:"content"`
		}
		_ = json.Unmarshal(rec.PDU, &p)
		if str(p.Content.Membership) == "join" {
			into[user] = DirectoryUser{UserID: user, DisplayName: str(p.Content.DisplayName), AvatarURL: str(p.Content.AvatarURL)}
		}
		return true, nil
	})
}
