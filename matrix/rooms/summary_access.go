package rooms

import (
	"context"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// SummaryFor answers the room summary API (MSC3266, spec v1.15): the summary of a room and the
// user's membership in it ("leave" when they have none), if the user may learn about the room.
// An empty user is an unauthenticated request. A room the user may not see is M_NOT_FOUND, as
// an unknown one is, so that its existence does not leak.
//
// Anyone may see a room that is world-readable or that anyone may join or knock on; members,
// invitees and knockers see their room; a restricted room shows itself to those in a room that
// grants access to it.
func (s *Service) SummaryFor(ctx context.Context, user id.UserID, roomID id.RoomID) (*Summary, string, error) {
	var sum *Summary
	membership := ""
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if err != nil {
			return err
		}
		if sum, err = s.summary(txn, nid); err != nil {
			return err
		}
		if user != "" {
			m, err := txn.GetMembership(user.String(), nid)
			if err != nil {
				return err
			}
			membership = m.Membership
		}
		ok, err := summaryVisible(txn, sum, user, membership)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", merr.NotFound("room %s not found", roomID)
	}
	if err != nil {
		return nil, "", err
	}
	if user != "" && membership == "" {
		membership = "leave"
	}
	return sum, membership, nil
}

func summaryVisible(txn *store.Txn, sum *Summary, user id.UserID, membership string) (bool, error) {
	switch {
	case sum.WorldReadable, sum.JoinRule == "public", sum.JoinRule == "knock", sum.JoinRule == "knock_restricted":
		return true, nil
	case membership == "join" || membership == "invite" || membership == "knock":
		return true, nil
	case user == "" || sum.JoinRule != "restricted":
		return false, nil
	}
	for _, r := range sum.AllowedRoomIDs {
		nid, err := txn.RoomNID(r)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		m, err := txn.GetMembership(user.String(), nid)
		if err != nil {
			return false, err
		}
		if m.Membership == "join" {
			return true, nil
		}
	}
	return false, nil
}
