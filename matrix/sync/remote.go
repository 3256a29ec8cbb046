package sync

import (
	"context"
	"errors"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Typing and receipts of users on other servers (m.typing and m.receipt EDUs). The membership
// index only covers local users, so a remote user's membership is read from the room state.

// remoteJoined checks a remote user is joined to a room and returns the room NID.
func (s *Service) remoteJoined(roomID id.RoomID, user id.UserID) (uint64, error) {
	var nid uint64
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		nid, err = txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("room %s is not known here", roomID)
		}
		if err != nil {
			return err
		}
		sk, err := txn.StateKeyNID("m.room.member", user.String(), false)
		if errors.Is(err, store.ErrNotFound) {
			return merr.Forbidden("%s is not in room %s", user, roomID)
		}
		if err != nil {
			return err
		}
		pos, err := txn.CurrentState(nid, sk)
		if errors.Is(err, store.ErrNotFound) {
			return merr.Forbidden("%s is not in room %s", user, roomID)
		}
		if err != nil {
			return err
		}
		rec, err := txn.Event(pos)
		if err != nil {
			return err
		}
		l, err := events.ParseLite(rec.PDU)
		if err != nil {
			return err
		}
		if l.Membership() != "join" {
			return merr.Forbidden("%s is not in room %s", user, roomID)
		}
		return nil
	})
	return nid, err
}

// SetRemoteTyping records a remote user's typing notification.
func (s *Service) SetRemoteTyping(ctx context.Context, roomID id.RoomID, user id.UserID, on bool, timeout time.Duration) error {
	nid, err := s.remoteJoined(roomID, user)
	if err != nil {
		return err
	}
	if timeout <= 0 || timeout > 2*time.Minute {
		timeout = 30 * time.Second
	}
	if s.typing.set(nid, user.String(), on, time.Now().Add(timeout)) {
		s.n.wakeRoom(nid)
	}
	return nil
}

// PutRemoteReceipt stores a remote user's public read receipt.
func (s *Service) PutRemoteReceipt(ctx context.Context, roomID id.RoomID, user id.UserID, typ string, eventID id.EventID, threadID string, ts int64) error {
	nid, err := s.remoteJoined(roomID, user)
	if err != nil {
		return err
	}
	if typ == "m.read.private" {
		return merr.BadJSON("private receipts are never federated")
	}
	return s.st.Update(func(txn *store.Txn) error {
		epos, err := txn.EventPos(eventID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("event %s not found", eventID)
		}
		if err != nil {
			return err
		}
		ev, err := txn.Event(epos)
		if err != nil {
			return err
		}
		if ev.Room != nid {
			return merr.NotFound("event %s is not in this room", eventID)
		}
		pos, err := txn.AllocPos(store.KindReceipt)
		if err != nil {
			return err
		}
		if ts == 0 {
			ts = time.Now().UnixMilli()
		}
		r := &store.ReceiptRecord{Type: typ, User: user.String(), Thread: threadID, EventID: eventID.String(), TS: ts, Pos: pos, RoomNID: nid}
		if err := txn.PutReceipt(r); err != nil {
			return err
		}
		txn.Notify(pos, change.Change{Pos: pos, Kind: change.Receipt, Room: nid, RoomID: roomID.String(), User: user.String()})
		return nil
	})
}

// publishTyping announces a local user's typing change on the bus, for the federation
// sender; roomID is looked up when the caller only has the NID.
func (s *Service) publishTyping(nid uint64, roomID, user string) {
	if s.publish == nil || !strings.HasSuffix(user, ":"+s.server) {
		return
	}
	if roomID == "" {
		err := s.st.View(func(txn *store.Txn) error {
			r, err := txn.Room(nid)
			if err == nil {
				roomID = r.ID
			}
			return err
		})
		if err != nil {
			s.log.Debug("typing change not announced", "room", nid, "err", err)
			return
		}
	}
	s.publish(change.Change{Kind: change.Typing, Room: nid, RoomID: roomID, User: user})
}

// IsTyping reports whether a user is typing in a room now (for the federation sender).
func (s *Service) IsTyping(roomID, user string) bool {
	var nid uint64
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		nid, err = txn.RoomNID(roomID)
		return err
	})
	return err == nil && s.typing.is(nid, user)
}

// PresenceOf reads a user's presence (for the federation sender); ok is false when presence
// is switched off or the user is not tracked.
func (s *Service) PresenceOf(user string) (presence string, statusMsg *string, lastActiveAgo int64, currentlyActive bool, ok bool) {
	if s.presence == nil {
		return "", nil, 0, false, false
	}
	e, found := s.presence.get(user)
	if !found {
		return "", nil, 0, false, false
	}
	st := e.status(time.Now().UnixMilli())
	if st.LastActiveAgo != nil {
		lastActiveAgo = *st.LastActiveAgo
	}
	if st.CurrentlyActive != nil {
		currentlyActive = *st.CurrentlyActive
	}
	return st.Presence, st.StatusMsg, lastActiveAgo, currentlyActive, true
}

// SetRemotePresence records a remote user's presence (an m.presence EDU) when presence is
// switched on; local users sharing a room with them see it in /sync.
func (s *Service) SetRemotePresence(ctx context.Context, user id.UserID, presence string, statusMsg *string, lastActiveAgo int64) error {
	st, ok := presenceState(presence)
	if !ok {
		return merr.InvalidParam("presence must be online, offline or unavailable")
	}
	if s.presence == nil || strings.HasSuffix(user.String(), ":"+s.server) {
		return nil
	}
	if !s.n.known(user.String()) {
		// The notifier learns remote members from the member events it sees; one who joined
		// through a state snapshot (or before a restart) is looked up in the rooms' state.
		rooms, err := s.remoteRooms(user)
		if err != nil {
			return err
		}
		for _, nid := range rooms {
			s.n.setMember(nid, user.String(), "join")
		}
	}
	if s.presence.setRemote(user.String(), st, statusMsg, lastActiveAgo) {
		s.presence.announce(user.String())
	}
	return nil
}

// remoteRooms lists the rooms a remote user is joined to, from the rooms' current state.
func (s *Service) remoteRooms(user id.UserID) ([]uint64, error) {
	var out []uint64
	err := s.st.View(func(txn *store.Txn) error {
		sk, err := txn.StateKeyNID("m.room.member", user.String(), false)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return txn.Rooms(func(nid uint64, _ *store.RoomRecord) (bool, error) {
			pos, err := txn.CurrentState(nid, sk)
			if errors.Is(err, store.ErrNotFound) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			rec, err := txn.Event(pos)
			if err != nil {
				return false, err
			}
			if l, err := events.ParseLite(rec.PDU); err == nil && l.Membership() == "join" {
				out = append(out, nid)
			}
			return true, nil
		})
	})
	return out, err
}

// setRemote applies a remote server's presence update; it reports whether anything changed.
// A remote user never syncs here, so the sweeper takes them offline if their server falls
// silent for the presence timeout.
func (t *presenceTracker) setRemote(user string, state uint8, msg *string, lastActiveAgo int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entry(user)
	if !ok {
		return false
	}
	now := t.now().UnixMilli()
	newMsg, hasMsg := "", msg != nil
	if hasMsg {
		newMsg = *msg
	}
	changed := e.serial == 0 || e.state != state || e.hasMsg != hasMsg || e.statusMsg != newMsg
	e.lastSeen = now
	e.lastActive = now - max(lastActiveAgo, 0)
	e.state, e.statusMsg, e.hasMsg, e.pinned = state, newMsg, hasMsg, false
	if changed {
		t.bump(user, &e, now)
	}
	t.users[user] = e
	return changed
}
