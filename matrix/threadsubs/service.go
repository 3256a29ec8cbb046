package threadsubs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Error codes of MSC4306.
const (
	CodeNotInThread             = "IO.ELEMENT.MSC4306.M_NOT_IN_THREAD"
	CodeConflictingUnsubscribed = "IO.ELEMENT.MSC4306.M_CONFLICTING_UNSUBSCRIPTION"
)

// Events finds an event the user may see (M_NOT_FOUND otherwise); rooms.Service does.
type Events interface {
	EventForUser(ctx context.Context, user id.UserID, roomID id.RoomID, eventID id.EventID) (*rooms.Event, error)
}

// Service reads and changes thread subscriptions.
type Service struct {
	st     *store.Store
	events Events
}

// New returns a Service.
func New(st *store.Store, events Events) *Service { return &Service{st: st, events: events} }

// Subscription is a subscription as the client API shows it.
type Subscription struct {
	Automatic bool `json:"automatic"`
}

// root loads the thread root, which the user must be able to see.
func (s *Service) root(ctx context.Context, user id.UserID, roomID id.RoomID, root id.EventID) (*rooms.Event, error) {
	ev, err := s.events.EventForUser(ctx, user, roomID, root)
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// Get returns the user's subscription to a thread (M_NOT_FOUND when not subscribed).
func (s *Service) Get(ctx context.Context, user id.UserID, roomID id.RoomID, root id.EventID) (*Subscription, error) {
	ev, err := s.root(ctx, user, roomID, root)
	if err != nil {
		return nil, err
	}
	var rec store.ThreadSubRecord
	err = s.st.View(func(txn *store.Txn) error {
		rec, err = txn.ThreadSub(user.String(), ev.Rec.Room, root.String())
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.Unsubscribed) {
		return nil, merr.NotFound("not subscribed to this thread")
	}
	if err != nil {
		return nil, fmt.Errorf("threadsubs: load: %w", err)
	}
	return &Subscription{Automatic: rec.Automatic}, nil
}

// Subscribe subscribes the user to a thread, by hand (cause "") or automatically because of
// the event cause, which must be in that thread. A manual subscription replaces an automatic
// one; an automatic one leaves any existing subscription as it is.
func (s *Service) Subscribe(ctx context.Context, user id.UserID, roomID id.RoomID, root, cause id.EventID) error {
	ev, err := s.root(ctx, user, roomID, root)
	if err != nil {
		return err
	}
	var causePos uint64
	if cause != "" {
		c, err := s.events.EventForUser(ctx, user, roomID, cause)
		if err != nil {
			return err
		}
		var content struct {
			RelatesTo struct {
				RelType string `json:"rel_type"`
				EventID string `json:"event_id"`
			} `json:"m.relates_to"`
		}
		_ = json.Unmarshal(c.Lite.Content, &content)
		if content.RelatesTo.RelType != "m.thread" || content.RelatesTo.EventID != root.String() {
			return &merr.Error{Status: http.StatusBadRequest, Code: CodeNotInThread, Message: "the automatic subscription's cause is not an event of this thread"}
		}
		causePos = c.Pos
	}
	return s.st.Update(func(txn *store.Txn) error {
		old, err := txn.ThreadSub(user.String(), ev.Rec.Room, root.String())
		exists := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if cause != "" {
			if exists && !old.Unsubscribed {
				return nil // already subscribed: an automatic subscription changes nothing
			}
			if exists && old.Unsubscribed && causePos <= old.UnsubscribedAt {
				return &merr.Error{Status: http.StatusConflict, Code: CodeConflictingUnsubscribed,
					Message: "the user unsubscribed from this thread after the cause event"}
			}
		} else if exists && !old.Unsubscribed && !old.Automatic {
			return nil // already subscribed by hand
		}
		return s.put(txn, user, ev.Rec.Room, roomID, root, store.ThreadSubRecord{Automatic: cause != ""})
	})
}

// Unsubscribe ends the user's subscription to a thread (succeeding also without one) and
// remembers when, for the conflict rule of automatic subscriptions.
func (s *Service) Unsubscribe(ctx context.Context, user id.UserID, roomID id.RoomID, root id.EventID) error {
	ev, err := s.root(ctx, user, roomID, root)
	if err != nil {
		return err
	}
	return s.st.Update(func(txn *store.Txn) error {
		old, err := txn.ThreadSub(user.String(), ev.Rec.Room, root.String())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil && old.Unsubscribed {
			return nil
		}
		// Every event of the room committed so far is at or below the watermark.
		return s.put(txn, user, ev.Rec.Room, roomID, root, store.ThreadSubRecord{Unsubscribed: true, UnsubscribedAt: s.st.Stream().Watermark()})
	})
}

func (s *Service) put(txn *store.Txn, user id.UserID, room uint64, roomID id.RoomID, root id.EventID, rec store.ThreadSubRecord) error {
	pos, err := txn.PutThreadSub(user.String(), room, root.String(), rec)
	if err != nil {
		return fmt.Errorf("threadsubs: store: %w", err)
	}
	// Wakes the user's syncs; sliding sync's extension reads the change stream.
	txn.Notify(pos, change.Change{Pos: pos, Kind: change.AccountData, User: user.String(), Room: room, RoomID: roomID.String(), EventType: "io.element.msc4306.thread_subscription"})
	return nil
}
