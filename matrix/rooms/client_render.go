package rooms

import (
	"context"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/store"
)

// Requester names who a client event is rendered for: the sending device sees its own
// transaction IDs.
type Requester struct {
	User   id.UserID
	Device string
}

// ClientEvents renders events in the client format with the whole unsigned block: age,
// transaction_id (only for the device that sent the event), prev_content and replaces_state
// for state events, and redacted_because for redacted ones. One read transaction serves the
// lot; the input order is kept.
func (s *Service) ClientEvents(ctx context.Context, who Requester, evs []*Event, now int64) ([]*events.ClientEvent, error) {
	out := make([]*events.ClientEvent, 0, len(evs))
	if len(evs) == 0 {
		return out, nil
	}
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		out, err = RenderInTxn(txn, who, evs, now)
		return err
	})
	return out, err
}

// RenderInTxn is ClientEvents inside a caller's read transaction (sync renders its whole
// response in one).
func RenderInTxn(txn *store.Txn, who Requester, evs []*Event, now int64) ([]*events.ClientEvent, error) {
	out := make([]*events.ClientEvent, 0, len(evs))
	agg, err := NewAggregator(txn, who, now) // bundled aggregations: relations_bundle.go
	if err != nil {
		return nil, err
	}
	mem := membershipAt{txn: txn, user: who.User.String(), cache: map[uint64]string{}}
	for _, e := range evs {
		ce, err := clientEvent(txn, who, e, now)
		if err != nil {
			return nil, err
		}
		if ce.Unsigned.Membership, err = mem.of(e); err != nil {
			return nil, err
		}
		if err := agg.Bundle(e, ce); err != nil {
			return nil, err
		}
		out = append(out, ce)
	}
	return out, nil
}

// membershipAt answers unsigned.membership (MSC4115, spec v1.11): the requesting user's
// membership at the event, "leave" when they had none. Cached per state snapshot, which
// consecutive events share.
type membershipAt struct {
	txn   *store.Txn
	user  string
	sk    uint64
	ready bool
	cache map[uint64]string
}

func (m *membershipAt) of(e *Event) (string, error) {
	if e.Lite.Type == "m.room.member" && e.Lite.StateKey != nil && *e.Lite.StateKey == m.user {
		return e.Lite.Membership(), nil
	}
	if !m.ready {
		sk, err := m.txn.StateKeyNID("m.room.member", m.user, false)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		m.sk, m.ready = sk, true
	}
	if v, ok := m.cache[e.Rec.Snapshot]; ok {
		return v, nil
	}
	v := "leave"
	if m.sk != 0 {
		pos, err := snapshotLookup(m.txn, e.Rec.Snapshot, m.sk)
		if err != nil {
			return "", err
		}
		if pos != 0 {
			rec, err := m.txn.Event(pos)
			if err != nil {
				return "", err
			}
			if l, err := events.ParseLite(rec.PDU); err == nil && l.Membership() != "" {
				v = l.Membership()
			}
		}
	}
	m.cache[e.Rec.Snapshot] = v
	return v, nil
}

// ClientEvent renders one event as ClientEvents does.
func (s *Service) ClientEvent(ctx context.Context, who Requester, e *Event, now int64) (*events.ClientEvent, error) {
	out, err := s.ClientEvents(ctx, who, []*Event{e}, now)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func clientEvent(txn *store.Txn, who Requester, e *Event, now int64) (*events.ClientEvent, error) {
	ce := e.Client(now)
	u := ce.Unsigned
	if e.Rec.TxnID != "" && e.Lite.Sender == who.User.String() && e.Rec.Device == who.Device && who.Device != "" {
		u.TransactionID = e.Rec.TxnID
	}
	if e.Lite.StateKey != nil {
		prev, err := previousState(txn, e)
		if err != nil {
			return nil, err
		}
		if prev != nil {
			u.ReplacesState = prev.ID
			if l, err := events.ParseLite(prev.PDU); err == nil && len(l.Content) > 0 {
				u.PrevContent = l.Content
				u.PrevSender = l.Sender
			}
		}
	}
	if e.Rec.Flags&store.FlagRedacted != 0 && e.Rec.Redacted != "" {
		pos, err := txn.EventPos(e.Rec.Redacted)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil {
			red, err := loadEvent(txn, pos, e.RoomID)
			if err != nil {
				return nil, err
			}
			rc := red.Client(now)
			rc.Unsigned = nil
			u.RedactedBecause = rc
		}
	}
	return ce, nil
}

// previousState is the state event that e replaced (from the snapshot before e), or nil.
func previousState(txn *store.Txn, e *Event) (*store.EventRecord, error) {
	sk, err := txn.StateKeyNID(e.Lite.Type, *e.Lite.StateKey, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pos, err := snapshotLookup(txn, e.Rec.Snapshot, sk)
	if err != nil || pos == 0 || pos == e.Pos {
		return nil, err
	}
	return txn.Event(pos)
}
