package rooms

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Errcodes of a restricted join this server cannot decide or grant (spec: make_join). Both ask
// the joining server to try another resident server; they are 400, not 403, because the join
// may well be allowed, only not by us.
const (
	// CodeUnableToAuthoriseJoin: this server is in none of the allowed rooms, so it cannot
	// tell whether the user is a member of one.
	CodeUnableToAuthoriseJoin = "M_UNABLE_TO_AUTHORISE_JOIN"
	// CodeUnableToGrantJoin: the user qualifies, but no user of this server in the room has
	// the power to invite, which join_authorised_via_users_server needs.
	CodeUnableToGrantJoin = "M_UNABLE_TO_GRANT_JOIN"
)

// JoinElsewhere reports whether err is a restricted join that another server of the room may be
// able to authorise (CodeUnableToAuthoriseJoin or CodeUnableToGrantJoin): a local user's join
// then goes through one of them over federation.
func JoinElsewhere(err error) bool {
	e, ok := merr.As(err)
	return ok && (e.Code == CodeUnableToAuthoriseJoin || e.Code == CodeUnableToGrantJoin)
}

// restrictRules is the part of m.room.join_rules a restricted join reads. Allow entries of
// other types or with a malformed shape are ignored, as the auth rules ignore them.
type restrictRules struct {
	JoinRule string
	Allowed  []id.RoomID
}

func parseRestrictRules(raw json.RawMessage) restrictRules {
	var c struct {
		JoinRule string          `json:"join_rule"`
		Allow    json.RawMessage `json:"allow"`
	}
	_ = json.Unmarshal(raw, &c)
	out := restrictRules{JoinRule: c.JoinRule}
	var allow []json.RawMessage
	if json.Unmarshal(c.Allow, &allow) != nil {
		return out
	}
	for _, a := range allow {
		var e struct {
			Type   string `json:"type"`
			RoomID string `json:"room_id"`
		}
		if json.Unmarshal(a, &e) == nil && e.Type == "m.room_membership" && e.RoomID != "" {
			out.Allowed = append(out.Allowed, id.RoomID(e.RoomID))
		}
	}
	return out
}

func (r restrictRules) restricted() bool {
	return r.JoinRule == "restricted" || r.JoinRule == "knock_restricted"
}

// restrictedAuthoriser picks the local user who authorises user's join through
// join_authorised_via_users_server, when the room's join rule is restricted and user is neither
// joined nor invited. Empty when no authoriser is needed. The user must be joined to an allowed
// room this server is in: membership of an allowed room this server has left is stale and proves
// nothing. M_UNABLE_TO_AUTHORISE_JOIN when the user is in none of the allowed rooms known here but
// some are not known here (another server may see the user in one), M_FORBIDDEN when the user is
// in none at all (or there are none). The authoriser is a local joined member with invite power,
// M_UNABLE_TO_GRANT_JOIN when there is none.
func (s *Service) restrictedAuthoriser(ctx context.Context, roomID id.RoomID, user id.UserID) (string, error) {
	jr, err := s.CurrentState(ctx, roomID, "m.room.join_rules", "")
	if err != nil || jr == nil {
		return "", err
	}
	rules := parseRestrictRules(jr.Lite.Content)
	if !rules.restricted() {
		return "", nil
	}
	if cur, _, err := s.Membership(ctx, roomID, user); err != nil || cur == "join" || cur == "invite" {
		return "", err
	}
	unknown, qualified := false, false
	for _, allowed := range rules.Allowed {
		resident, err := s.IsResident(allowed)
		if err != nil {
			return "", err
		}
		if !resident {
			unknown = true
			continue
		}
		if m, _, err := s.Membership(ctx, allowed, user); err != nil {
			return "", err
		} else if m == "join" {
			qualified = true
			break
		}
	}
	switch {
	case !qualified && unknown:
		return "", &merr.Error{Status: http.StatusBadRequest, Code: CodeUnableToAuthoriseJoin,
			Message: "this server cannot see whether you are in the rooms that grant access to this one"}
	case !qualified:
		return "", merr.Forbidden("you are not a member of any room that grants access to this one")
	}
	inviters, err := s.inviters(ctx, roomID)
	if err != nil {
		return "", err
	}
	for _, u := range inviters {
		if s.IsLocal(u) {
			return u.String(), nil
		}
	}
	return "", &merr.Error{Status: http.StatusBadRequest, Code: CodeUnableToGrantJoin,
		Message: "no member of this server can authorise your join"}
}

// inviters lists the joined members of a room with the power to invite, most powerful first
// (ties in user ID order, so the choice of authoriser is stable).
func (s *Service) inviters(ctx context.Context, roomID id.RoomID) ([]id.UserID, error) {
	pl, err := s.PowerLevels(ctx, roomID)
	if err != nil {
		return nil, err
	}
	members, err := s.Members(ctx, roomID, "join")
	if err != nil {
		return nil, err
	}
	var out []id.UserID
	for _, m := range members {
		if u := id.UserID(m); pl.GetUserLevel(u) >= pl.Invite() {
			out = append(out, u)
		}
	}
	slices.SortStableFunc(out, func(a, b id.UserID) int {
		if d := pl.GetUserLevel(b) - pl.GetUserLevel(a); d != 0 {
			return d
		}
		return cmp.Compare(a, b)
	})
	return out, nil
}

// localJoinRefusal is the answer to a local user's restricted join this server cannot authorise:
// the JoinElsewhere error when another server of the room has a member who may invite (the
// client API joins through it), else M_FORBIDDEN, as nobody can let the user in.
func (s *Service) localJoinRefusal(ctx context.Context, roomID id.RoomID, err error) error {
	if !JoinElsewhere(err) {
		return err
	}
	servers, serr := s.AuthorisingServers(ctx, roomID)
	if serr != nil {
		return fmt.Errorf("restricted join: %w", serr)
	}
	if len(servers) == 0 {
		return merr.Forbidden("no member of this room can authorise your join")
	}
	return err
}

// AuthorisingServers lists the other servers in a room that have a joined member with the power
// to invite, strongest first: the servers that can authorise a restricted join this server
// cannot (JoinElsewhere), as Synapse picks them.
func (s *Service) AuthorisingServers(ctx context.Context, roomID id.RoomID) ([]string, error) {
	inviters, err := s.inviters(ctx, roomID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range inviters {
		if srv := u.Homeserver(); srv != s.server && !slices.Contains(out, srv) {
			out = append(out, srv)
		}
	}
	return out, nil
}
