package rooms

import (
	"context"
	"encoding/json"
	"encoding/json/jsontext"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// fullSnapshotEvery bounds how many deltas a snapshot chain may have.
const fullSnapshotEvery = 16

// Service is the room domain.
type Service struct {
	st         *store.Store
	signer     events.Signer
	server     string
	log        *slog.Logger
	now        func() time.Time
	locks      [64]sync.Mutex
	prof       Profiles
	defVer     id.RoomVersion
	resolve    Resolver         // state resolution for forks (remote.go)
	inviter    RemoteInviter    // countersigning of invites to remote users (remote_invite.go)
	backfiller Backfiller       // history from other servers (backfill.go)
	guard      MembershipGuard  // rules of other packages on membership changes (guard.go)
	hierFetch  HierarchyFetcher // remote spaces for the client walk (hierarchy_remote.go)
	tsFetch    TimestampFetcher // jump to date on other servers (timestamp_remote.go)

	serversMu sync.Mutex
	servers   map[uint64]serversEntry // joined servers per room at a snapshot (fedread.go)
}

// SetDefaultVersion sets the version createRoom uses when the client names none (config
// default_room_version). Call before serving.
func (s *Service) SetDefaultVersion(v id.RoomVersion) error {
	if !events.Supported(v) {
		return fmt.Errorf("default room version %q is not supported", v)
	}
	s.defVer = v
	return nil
}

// DefaultVersion is the version new rooms get unless the client asks otherwise.
func (s *Service) DefaultVersion() id.RoomVersion { return s.defVer }

// Profiles supplies local users' display names and avatars for their member events.
type Profiles interface {
	Profile(ctx context.Context, user id.UserID) (displayName, avatarURL string, err error)
}

// New makes the room service. Commits are announced through the store's stream sink; the
// appliance connects that sink to the bus.
func New(st *store.Store, signer events.Signer, prof Profiles, log *slog.Logger) *Service {
	return &Service{st: st, signer: signer, server: signer.ServerName, log: log, now: time.Now, prof: prof, defVer: events.DefaultVersion}
}

// ServerName is the local server name.
func (s *Service) ServerName() string { return s.server }

func (s *Service) lock(nid uint64) func() {
	m := &s.locks[nid%uint64(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// IsLocal reports whether a user ID belongs to this server.
func (s *Service) IsLocal(u id.UserID) bool { return u.Homeserver() == s.server }

// room is a room being appended to inside one transaction.
type room struct {
	nid uint64
	rec *store.RoomRecord
}

// Appended is the result of one append.
type Appended struct {
	EventID id.EventID
	Pos     uint64
}

// SendOpts carry client context for an append.
type SendOpts struct {
	Device string // sending device, for unsigned.transaction_id
	TxnID  string
	// TS is the origin_server_ts to give the event instead of the clock (an application
	// service's ?ts, spec: timestamp massaging); 0 means now.
	TS int64
}

// Send appends one event to a room after checking it against the auth rules.
func (s *Service) Send(ctx context.Context, roomID id.RoomID, t events.Template, o SendOpts) (*Appended, error) {
	nid, err := s.roomNID(roomID)
	if err != nil {
		return nil, err
	}
	unlock := s.lock(nid)
	defer unlock()
	var out *Appended
	err = s.st.Update(func(txn *store.Txn) error {
		if o.TxnID != "" {
			if prev, err := txn.TxnEvent(t.Sender.String(), o.Device, txnScope(roomID, t, o.TxnID)); err == nil {
				pos, err := txn.EventPos(prev)
				if err != nil {
					return err
				}
				out = &Appended{EventID: id.EventID(prev), Pos: pos}
				return nil
			}
		}
		r, err := loadRoom(txn, nid)
		if err != nil {
			return err
		}
		if t.Type == "m.room.member" && t.StateKey != nil {
			if t.Content, err = s.dropStaleAuthoriser(txn, nid, *t.StateKey, t.Content); err != nil {
				return err
			}
		}
		if t.StateKey != nil && t.Type != "m.room.member" {
			// Setting state to what it already is, by the same sender, changes nothing:
			// answer with the current event rather than growing the room (clients retry
			// state PUTs, and Synapse behaves so).
			if cur, err := s.currentStateEvent(txn, nid, t.Type, *t.StateKey); err != nil {
				return err
			} else if cur != nil && sameState(cur, t) {
				pos, err := txn.EventPos(cur.ID)
				if err != nil {
					return err
				}
				out = &Appended{EventID: id.EventID(cur.ID), Pos: pos}
				return nil
			}
		}
		a, err := s.appendEvent(txn, r, t, o)
		if err != nil {
			return err
		}
		out = a
		return txn.PutRoom(r.nid, r.rec)
	})
	return out, err
}

// sameState reports whether a stored state event has the template's sender and content.
func sameState(cur *store.EventRecord, t events.Template) bool {
	l, err := events.ParseLite(cur.PDU)
	if err != nil || l.Sender != t.Sender.String() || cur.Flags&store.FlagRedacted != 0 {
		return false
	}
	var a, b any
	if json.Unmarshal(l.Content, &a) != nil || json.Unmarshal(t.Content, &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

// txnScope scopes a client transaction ID the way the spec does, by endpoint path: the room,
// the event type and (for /redact) the target are part of the path.
func txnScope(roomID id.RoomID, t events.Template, txnID string) string {
	return roomID.String() + "\x00" + t.Type + "\x00" + t.Redacts.String() + "\x00" + txnID
}

func deref(e *id.EventID) id.EventID {
	if e == nil {
		return ""
	}
	return *e
}

func loadRoom(txn *store.Txn, nid uint64) (*room, error) {
	rec, err := txn.Room(nid)
	if err != nil {
		return nil, fmt.Errorf("load room %d: %w", nid, err)
	}
	return &room{nid: nid, rec: rec}, nil
}

func (s *Service) roomNID(roomID id.RoomID) (uint64, error) {
	var nid uint64
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		nid, err = txn.RoomNID(roomID.String())
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return 0, merr.NotFound("room %s is not known here", roomID)
	}
	return nid, err
}

// appendEvent builds, authorises and stores one event on top of the room's current state. The
// caller holds the room lock and commits the transaction, then saves r.rec.
func (s *Service) appendEvent(txn *store.Txn, r *room, t events.Template, o SendOpts) (*Appended, error) {
	rv := id.RoomVersion(r.rec.Version)
	// Auth events: selected from current state by the spec's algorithm.
	probe := &pdu.PDU{Type: t.Type, StateKey: t.StateKey, Sender: t.Sender, Content: t.Content}
	var authIDs []id.EventID
	for _, k := range probe.AuthEventSelection(events.Base(rv)) {
		ev, err := s.currentStateEvent(txn, r.nid, k.Type, k.StateKey)
		if err != nil {
			return nil, err
		}
		if ev != nil {
			authIDs = append(authIDs, id.EventID(ev.ID))
		}
	}
	prev := make([]id.EventID, 0, len(r.rec.Extremities))
	for _, e := range r.rec.Extremities {
		prev = append(prev, id.EventID(e))
	}
	t.RefHashes = events.RefHashesFrom(s.getEvents(txn)) // v1/v2 rooms reference by hash too
	now := s.now()
	if o.TS > 0 {
		now = time.UnixMilli(o.TS)
	}
	built, err := events.Build(rv, id.RoomID(r.rec.ID), t, prev, authIDs, r.rec.Depth+1, now, s.signer)
	if err != nil {
		return nil, err
	}
	if err := events.AuthorizeLocal(rv, built.PDU, s.getEvents(txn), s.signer); err != nil {
		return nil, err
	}
	if err := s.refuseBlockedInvite(txn, built.PDU); err != nil { // invite_permission.go
		return nil, err
	}
	if built, err = s.countersignInvite(txn, r, built); err != nil {
		return nil, err
	}
	return s.store(txn, r, built, o)
}

// store writes a built, authorised event and moves the room forward.
func (s *Service) store(txn *store.Txn, r *room, b *events.Built, o SendOpts) (*Appended, error) {
	pos, err := txn.AllocPos(store.KindEvent)
	if err != nil {
		return nil, err
	}
	rec := &store.EventRecord{Room: r.nid, Snapshot: r.rec.Snapshot, After: r.rec.Snapshot, ID: b.ID.String(), PDU: b.JSON, Device: o.Device, TxnID: o.TxnID}
	ch := change.Change{Pos: pos, Kind: change.Event, Room: r.nid, RoomID: r.rec.ID, EventID: b.ID.String(), EventType: b.PDU.Type, StateKey: b.PDU.StateKey, Sender: b.PDU.Sender.String()}
	if b.PDU.StateKey != nil {
		sk, err := txn.StateKeyNID(b.PDU.Type, *b.PDU.StateKey, true)
		if err != nil {
			return nil, err
		}
		snap, err := s.newSnapshot(txn, r, sk, pos)
		if err != nil {
			return nil, err
		}
		rec.After = snap
		r.rec.Snapshot = snap
		if err := txn.SetCurrentState(r.nid, sk, pos); err != nil {
			return nil, err
		}
		if b.PDU.Type == "m.room.member" {
			var c struct {
				Membership string `json:"membership"`
			}
			_ = json.Unmarshal(b.PDU.Content, &c)
			ch.Membership = c.Membership
			target := id.UserID(*b.PDU.StateKey)
			if s.IsLocal(target) {
				if err := txn.SetMembership(target.String(), r.nid, c.Membership, pos); err != nil {
					return nil, err
				}
				if c.Membership == "join" || c.Membership == "invite" {
					if err := txn.SetForgotten(target.String(), r.nid, false); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if err := txn.PutEvent(pos, rec); err != nil {
		return nil, err
	}
	if o.TxnID != "" {
		if err := txn.PutTxn(b.PDU.Sender.String(), o.Device, txnScope(id.RoomID(r.rec.ID), events.Template{Type: b.PDU.Type, Redacts: deref(b.PDU.Redacts)}, o.TxnID), b.ID.String()); err != nil {
			return nil, err
		}
	}
	if b.PDU.Type == "m.room.redaction" {
		if err := s.applyRedaction(txn, r, b); err != nil {
			return nil, err
		}
	}
	if err := s.indexRelations(txn, r, b, pos); err != nil { // relations.go
		return nil, err
	}
	r.rec.Extremities = []string{b.ID.String()}
	r.rec.Depth = b.PDU.Depth
	r.rec.Latest = pos
	txn.Notify(pos, ch)
	return &Appended{EventID: b.ID, Pos: pos}, nil
}

// newSnapshot writes the snapshot that follows r's current one with sk set to pos.
func (s *Service) newSnapshot(txn *store.Txn, r *room, sk, pos uint64) (uint64, error) {
	if r.rec.Snapshot != 0 {
		parent, err := txn.GetSnapshot(r.rec.Snapshot)
		if err != nil {
			return 0, fmt.Errorf("load snapshot %d: %w", r.rec.Snapshot, err)
		}
		if parent.Depth+1 < fullSnapshotEvery {
			return txn.PutSnapshot(&store.Snapshot{Parent: r.rec.Snapshot, Depth: parent.Depth + 1, Entries: map[uint64]uint64{sk: pos}})
		}
	}
	full, err := loadSnapshot(txn, r.rec.Snapshot)
	if err != nil {
		return 0, err
	}
	full[sk] = pos
	return txn.PutSnapshot(&store.Snapshot{Entries: full})
}

// getEvents resolves event IDs for the auth rules from the store.
func (s *Service) getEvents(txn *store.Txn) func([]id.EventID) ([]*pdu.PDU, error) {
	return func(ids []id.EventID) ([]*pdu.PDU, error) {
		out := make([]*pdu.PDU, 0, len(ids))
		for _, eid := range ids {
			pos, err := txn.EventPos(eid.String())
			if errors.Is(err, store.ErrNotFound) {
				out = append(out, nil)
				continue
			}
			if err != nil {
				return nil, err
			}
			rec, err := txn.Event(pos)
			if err != nil {
				return nil, err
			}
			p, err := events.Parse(rec.PDU)
			if err != nil {
				return nil, err
			}
			// A v12 create event carries no room_id; it is never in auth_events there (the
			// room ID names it), so rule 3.4 never compares it. Leave it as signed: adding
			// the room ID would change its event ID.
			p.InternalMeta.Rejected = rec.Flags&store.FlagRejected != 0
			out = append(out, p)
		}
		return out, nil
	}
}

// currentStateEvent loads the current state event for (type, state_key), or nil.
func (s *Service) currentStateEvent(txn *store.Txn, room uint64, typ, sk string) (*store.EventRecord, error) {
	skNID, err := txn.StateKeyNID(typ, sk, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pos, err := txn.CurrentState(room, skNID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return txn.Event(pos)
}

// content marshals event content built by this package from plain maps and strings, which
// cannot fail to encode.
func content(v any) jsontext.Value {
	b, _ := json.Marshal(v)
	return b
}

// dropStaleAuthoriser removes join_authorised_via_users_server from a join of a user who is
// already joined (a profile change): the authorisation only means something for a user entering
// the room, and the auth rules would otherwise demand a signature from whatever server the
// client wrote there. Synapse ignores it the same way.
func (s *Service) dropStaleAuthoriser(txn *store.Txn, nid uint64, target string, c jsontext.Value) (jsontext.Value, error) {
	var m map[string]json.RawMessage
	if json.Unmarshal(c, &m) != nil {
		return c, nil
	}
	if _, ok := m["join_authorised_via_users_server"]; !ok {
		return c, nil
	}
	var ms string
	if json.Unmarshal(m["membership"], &ms) != nil || ms != "join" {
		return c, nil
	}
	cur, err := s.currentStateEvent(txn, nid, "m.room.member", target)
	if err != nil || cur == nil {
		return c, err
	}
	if l, err := events.ParseLite(cur.PDU); err != nil || l.Membership() != "join" {
		return c, err
	}
	delete(m, "join_authorised_via_users_server")
	b, err := json.Marshal(m)
	if err != nil {
		return c, nil
	}
	return b, nil
}
