package rooms

import (
	"context"
	"encoding/json"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// MemberChange is a membership request from a client.
type MemberChange struct {
	Sender     id.UserID
	Target     id.UserID
	Membership string // join, invite, leave, ban, knock
	Reason     string
	IsDirect   bool
	Extra      map[string]json.RawMessage // further content keys the client sent (join)
	// System marks a change the server makes on the user's behalf (deactivation, room
	// deletion): the membership guard (guard.go) does not apply to it.
	System bool
}

// ChangeMembership sends an m.room.member event for the change after the checks the auth
// rules cannot express (an unknown room, a kick of someone not in the room).
func (s *Service) ChangeMembership(ctx context.Context, roomID id.RoomID, m MemberChange) (*Appended, error) {
	if _, _, err := m.Target.ParseAndValidateRelaxed(); err != nil {
		return nil, merr.InvalidParam("invalid user ID %q", m.Target)
	}
	c := map[string]any{}
	for k, v := range m.Extra {
		c[k] = v
	}
	c["membership"] = m.Membership
	if m.Reason != "" {
		c["reason"] = m.Reason
	}
	if m.IsDirect {
		c["is_direct"] = true
	}
	if m.Membership == "join" && s.prof != nil && s.IsLocal(m.Target) {
		if dn, av, err := s.prof.Profile(ctx, m.Target); err == nil {
			if dn != "" {
				c["displayname"] = dn
			}
			if av != "" {
				c["avatar_url"] = av
			}
		}
	}
	if m.Membership == "join" {
		if via, err := s.restrictedAuthoriser(ctx, roomID, m.Target); err != nil {
			return nil, s.localJoinRefusal(ctx, roomID, err)
		} else if via != "" {
			c["join_authorised_via_users_server"] = via
		}
	}
	cur, _, err := s.Membership(ctx, roomID, m.Target)
	if err != nil {
		return nil, err
	}
	if s.guard != nil && !m.System {
		if err := s.guard.CheckMembership(ctx, roomID, m, cur); err != nil {
			return nil, err
		}
	}
	if m.Membership == "leave" && m.Sender == m.Target && cur == "" {
		return nil, merr.Forbidden("you are not a member of this room")
	}
	if m.Membership == "leave" && m.Sender == m.Target && cur == "leave" {
		// Leaving twice is a no-op that succeeds, as clients retry leaves.
		return &Appended{}, nil
	}
	if m.Membership == "join" && cur == "join" {
		// Re-joining with the same profile would add nothing; answer with the room.
		ev, err := s.CurrentState(ctx, roomID, "m.room.member", m.Target.String())
		if err == nil && ev != nil && sameMemberContent(ev.Lite.Content, c) {
			return &Appended{EventID: id.EventID(ev.Rec.ID), Pos: ev.Pos}, nil
		}
	}
	sk := m.Target.String()
	return s.Send(ctx, roomID, events.Template{Type: "m.room.member", StateKey: &sk, Sender: m.Sender, Content: content(c)}, SendOpts{})
}

func sameMemberContent(old json.RawMessage, c map[string]any) bool {
	var o map[string]any
	if json.Unmarshal(old, &o) != nil {
		return false
	}
	for _, k := range []string{"membership", "displayname", "avatar_url"} {
		if o[k] != c[k] {
			return false
		}
	}
	return true
}

// Members lists the user IDs with a given membership ("" = any) in the room's current state.
func (s *Service) Members(ctx context.Context, roomID id.RoomID, membership string) ([]string, error) {
	evs, err := s.MemberEvents(ctx, roomID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range evs {
		if membership == "" || e.Lite.Membership() == membership {
			out = append(out, *e.Lite.StateKey)
		}
	}
	return out, nil
}

// MemberEvents returns the current m.room.member events of a room.
func (s *Service) MemberEvents(ctx context.Context, roomID id.RoomID) ([]*Event, error) {
	all, err := s.AllCurrentState(ctx, roomID)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, e := range all {
		if e.Lite.Type == "m.room.member" {
			out = append(out, e)
		}
	}
	return out, nil
}

// JoinedRooms lists the rooms a local user is joined to.
func (s *Service) JoinedRooms(ctx context.Context, user id.UserID) ([]id.RoomID, error) {
	var out []id.RoomID
	err := s.st.View(func(txn *store.Txn) error {
		return txn.Memberships(user.String(), func(m store.Membership) (bool, error) {
			if m.Membership != "join" {
				return true, nil
			}
			r, err := txn.Room(m.Room)
			if err != nil {
				return false, err
			}
			out = append(out, id.RoomID(r.ID))
			return true, nil
		})
	})
	return out, err
}

// Forget hides a room the user has left from their sync.
func (s *Service) Forget(ctx context.Context, roomID id.RoomID, user id.UserID) error {
	return s.st.Update(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("room %s is not known here", roomID)
		}
		if err != nil {
			return err
		}
		m, err := txn.GetMembership(user.String(), nid)
		if err != nil {
			return err
		}
		if m.Membership == "join" || m.Membership == "invite" || m.Membership == "knock" {
			return merr.Unknown("you must leave the room before forgetting it")
		}
		return txn.SetForgotten(user.String(), nid, true)
	})
}

// UpdateProfile sends a new join event with the user's profile into every room they are in.
func (s *Service) UpdateProfile(ctx context.Context, user id.UserID) error {
	rooms, err := s.JoinedRooms(ctx, user)
	if err != nil {
		return err
	}
	for _, r := range rooms {
		if _, err := s.ChangeMembership(ctx, r, MemberChange{Sender: user, Target: user, Membership: "join"}); err != nil {
			s.log.Warn("profile propagation failed", "room", r, "user", user, "err", err)
		}
	}
	return nil
}

// LeaveAll makes a (deactivated) user leave every room and reject every invite.
func (s *Service) LeaveAll(ctx context.Context, user id.UserID) error {
	var rooms []id.RoomID
	err := s.st.View(func(txn *store.Txn) error {
		return txn.Memberships(user.String(), func(m store.Membership) (bool, error) {
			if m.Membership == "join" || m.Membership == "invite" || m.Membership == "knock" {
				r, err := txn.Room(m.Room)
				if err != nil {
					return false, err
				}
				rooms = append(rooms, id.RoomID(r.ID))
			}
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	for _, r := range rooms {
		if _, err := s.ChangeMembership(ctx, r, MemberChange{Sender: user, Target: user, Membership: "leave", System: true}); err != nil {
			return err
		}
	}
	return nil
}
