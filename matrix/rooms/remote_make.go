package rooms

import (
	"context"
	"slices"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// MakeMembership answers make_join, make_leave and make_knock: an unsigned membership event for
// a remote user, built on the room's current extremities and state, which the user's server
// signs and hands back through send_*. The event is checked against the auth rules first so that
// a refused join fails here with M_FORBIDDEN rather than at send_join. supported lists the room
// versions the remote server understands (make_join's ver parameters).
func (s *Service) MakeMembership(ctx context.Context, roomID id.RoomID, user id.UserID, membership string, supported []id.RoomVersion) (*pdu.PDU, id.RoomVersion, error) {
	nid, err := s.roomNID(roomID)
	if err != nil {
		return nil, "", err
	}
	var proto *pdu.PDU
	var rv id.RoomVersion
	err = s.st.View(func(txn *store.Txn) error {
		r, err := loadRoom(txn, nid)
		if err != nil {
			return err
		}
		rv = id.RoomVersion(r.rec.Version)
		if r.rec.Stub {
			return merr.NotFound("room %s is not joined here", roomID)
		}
		if len(supported) > 0 && !slices.Contains(supported, rv) {
			return merr.IncompatibleRoomVersion("your server does not support room version %s", rv).With("room_version", string(rv))
		}
		c := map[string]any{"membership": membership}
		if membership == "join" {
			if via, err := s.restrictedAuthoriser(ctx, roomID, user); err != nil {
				return err
			} else if via != "" {
				c["join_authorised_via_users_server"] = via
			}
		}
		sk := user.String()
		t := events.Template{Type: "m.room.member", StateKey: &sk, Sender: user, Content: content(c)}
		probe := &pdu.PDU{Type: t.Type, StateKey: t.StateKey, Sender: t.Sender, Content: t.Content}
		var authIDs []id.EventID
		for _, k := range probe.AuthEventSelection(events.Base(rv)) {
			ev, err := s.currentStateEvent(txn, r.nid, k.Type, k.StateKey)
			if err != nil {
				return err
			}
			if ev != nil {
				authIDs = append(authIDs, id.EventID(ev.ID))
			}
		}
		prev := make([]id.EventID, 0, len(r.rec.Extremities))
		for _, e := range r.rec.Extremities {
			prev = append(prev, id.EventID(e))
		}
		// Build signs as this server; for the check that is what a restricted join's
		// authorising signature needs, and the remote server replaces hashes and signatures.
		t.RefHashes = events.RefHashesFrom(s.getEvents(txn)) // v1/v2 rooms reference by hash too
		built, err := events.Build(rv, roomID, t, prev, authIDs, r.rec.Depth+1, s.now(), s.signer)
		if err != nil {
			return err
		}
		if err := events.AuthorizeLocal(rv, built.PDU, s.getEvents(txn), s.signer); err != nil {
			return err
		}
		proto = built.PDU
		proto.Signatures, proto.Hashes = nil, nil
		return nil
	})
	return proto, rv, err
}
