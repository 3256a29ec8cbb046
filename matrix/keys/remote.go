package keys

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	gosync "sync"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/store"
)

// Keys of users on other servers. Their devices are learnt from their server (federation
// /user/keys/query, /user/devices) and kept in a memory cache per user, which
// m.device_list_update and m.signing_key_update EDUs keep current or invalidate. The cache
// is memory only: it is a cache, and after a restart the next query asks the owner again.

// Federation is what the keys service asks of other servers.
type Federation interface {
	// UserDevices is GET /_matrix/federation/v1/user/devices/{userId}.
	UserDevices(ctx context.Context, server, user string) (*FedDevices, error)
	// QueryKeys is POST /_matrix/federation/v1/user/keys/query.
	QueryKeys(ctx context.Context, server string, users map[string][]string) (*FedQueryResponse, error)
	// ClaimKeys is POST /_matrix/federation/v1/user/keys/claim; it answers one_time_keys.
	ClaimKeys(ctx context.Context, server string, req map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error)
}

// RemoteToDevice queues to-device messages for users of other servers (the federation
// sender's producer); it returns once they are committed to the outbound queue.
type RemoteToDevice interface {
	SendToDevice(sender, evType, messageID string, messages map[string]map[string]json.RawMessage) error
}

// RemoteOptions configure the federated side of the keys service.
type RemoteOptions struct {
	Federation Federation     // required
	ToDevice   RemoteToDevice // nil: to-device messages for remote users are dropped
	// Timeout bounds one request to another server (default 10 s).
	Timeout time.Duration
	// TTL is how long a cached device list is trusted without news (default 10 min): a
	// user who shares no room with ours sends no updates, so the cache must age out.
	TTL time.Duration
	// MaxUsers bounds the cache (default 5000 users).
	MaxUsers int
}

// remoteState is the cache of remote users' keys and the clients to their servers.
type remoteState struct {
	o   RemoteOptions
	now func() time.Time
	sem chan struct{} // bounds concurrent device-list resyncs

	mu        gosync.Mutex
	users     map[string]*remoteUser
	resyncing map[string]bool // user -> a fetch runs; true: run another after it
	fresh     map[string]bool // newly sharing a room and not fetched since (remote_track.go)
}

// remoteUser is the cached device list of one remote user.
type remoteUser struct {
	streamID    int64                      // 0 when learnt from a key query (no stream ID there)
	devices     map[string]json.RawMessage // device ID -> signed device keys (unsigned name included)
	master      json.RawMessage
	selfSigning json.RawMessage
	fetched     time.Time
	stale       bool // an update we could not apply arrived: ask the owner again
}

// EnableRemote connects the service to other servers. Call before serving.
func (s *Service) EnableRemote(o RemoteOptions) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Minute
	}
	if o.MaxUsers <= 0 {
		o.MaxUsers = 5000
	}
	s.remote = &remoteState{o: o, now: time.Now, sem: make(chan struct{}, 4),
		users: map[string]*remoteUser{}, resyncing: map[string]bool{}, fresh: map[string]bool{}}
}

// cached returns a copy-safe view of a fresh cache entry, or nil.
func (r *remoteState) cached(user string) *remoteUser {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[user]
	if u == nil || u.stale || r.now().Sub(u.fetched) > r.o.TTL {
		return nil
	}
	return u
}

// put stores a whole device list, evicting the oldest entry when the cache is full.
func (r *remoteState) put(user string, u *remoteUser) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.users[user]; !ok && len(r.users) >= r.o.MaxUsers {
		victim, oldest := "", time.Time{}
		for k, v := range r.users {
			if victim == "" || v.fetched.Before(oldest) {
				victim, oldest = k, v.fetched
			}
		}
		delete(r.users, victim)
	}
	u.fetched = r.now()
	r.users[user] = u
	delete(r.fresh, user) // fetched: later updates are news to whoever saw this list
}

// RemoteDeviceUpdate is the content of an m.device_list_update EDU.
type RemoteDeviceUpdate struct {
	UserID      string          `json:"user_id"`
	DeviceID    string          `json:"device_id"`
	DisplayName string          `json:"device_display_name"`
	StreamID    int64           `json:"stream_id"`
	PrevID      []int64         `json:"prev_id"`
	Deleted     bool            `json:"deleted"`
	Keys        json.RawMessage `json:"keys"`
}

// RemoteSigningKeyUpdate is the content of an m.signing_key_update EDU.
type RemoteSigningKeyUpdate struct {
	UserID         string          `json:"user_id"`
	MasterKey      json.RawMessage `json:"master_key"`
	SelfSigningKey json.RawMessage `json:"self_signing_key"`
}

// ApplyDeviceListUpdate takes a remote user's device change. When the cached list is at the
// update's prev_id the change is applied in place; otherwise (an update was missed, or the
// list came from a key query without a stream ID) the entry is marked stale and the whole list
// is fetched again in the background. Either way local users sharing a room with the user see
// them in device_lists.changed. The caller has checked that origin owns the user.
func (s *Service) ApplyDeviceListUpdate(ctx context.Context, u RemoteDeviceUpdate) error {
	if s.remote == nil || s.isLocal(u.UserID) {
		return nil
	}
	if err := checkIDPart("device_id", u.DeviceID); err != nil {
		return err
	}
	r := s.remote
	r.mu.Lock()
	e := r.users[u.UserID]
	applied := false
	if e != nil && !e.stale && e.streamID != 0 && u.StreamID > e.streamID && containsID(u.PrevID, e.streamID) {
		if u.Deleted || !isObject(u.Keys) {
			delete(e.devices, u.DeviceID) // gone, or no keys uploaded yet: nothing to show
		} else if k, err := withDisplayName(u.Keys, u.DisplayName); err == nil {
			e.devices[u.DeviceID] = k
		} else {
			e.stale = true // keys we cannot read: ask the owner for the whole list
		}
		if !e.stale {
			e.streamID = u.StreamID
			applied = true
		}
	} else if e != nil {
		e.stale = true
	}
	unseen := e == nil && r.fresh[u.UserID]
	r.mu.Unlock()
	if unseen {
		s.log.Debug("device list update of a newly joined remote user nobody here has fetched", "user", u.UserID, "stream_id", u.StreamID)
		return nil
	}
	if err := s.markRemoteChanged(u.UserID); err != nil {
		return err
	}
	if !applied && e != nil {
		s.log.Debug("remote device list out of step, fetching it whole", "user", u.UserID, "stream_id", u.StreamID, "prev_id", u.PrevID)
		s.resyncLater(u.UserID)
	} else if applied {
		s.log.Debug("remote device list updated in place", "user", u.UserID, "device", u.DeviceID, "stream_id", u.StreamID)
	}
	return nil
}

// ApplySigningKeyUpdate takes a remote user's new master or self-signing key.
func (s *Service) ApplySigningKeyUpdate(ctx context.Context, u RemoteSigningKeyUpdate) error {
	if s.remote == nil || s.isLocal(u.UserID) {
		return nil
	}
	r := s.remote
	r.mu.Lock()
	e := r.users[u.UserID]
	if e != nil {
		if isObject(u.MasterKey) {
			e.master = u.MasterKey
		}
		if isObject(u.SelfSigningKey) {
			e.selfSigning = u.SelfSigningKey
		}
	}
	unseen := e == nil && r.fresh[u.UserID]
	r.mu.Unlock()
	if unseen {
		return nil // as for device list updates: the join already listed them as changed
	}
	return s.markRemoteChanged(u.UserID)
}

// resyncLater fetches a remote user's whole device list in the background (one at a time per
// user, a few at a time overall), replacing the cache entry.
func (s *Service) resyncLater(user string) {
	r := s.remote
	r.mu.Lock()
	if _, busy := r.resyncing[user]; busy {
		// The running fetch may have been answered before this update's change: run once
		// more after it, or the cache would keep a list older than what we were told.
		r.resyncing[user] = true
		r.mu.Unlock()
		return
	}
	r.resyncing[user] = false
	r.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for s.resyncOnce(user) {
		}
	}()
}

// resyncOnce runs one background fetch of user's list and reports whether another was asked
// for meanwhile (the user then stays marked as resyncing).
func (s *Service) resyncOnce(user string) (again bool) {
	r := s.remote
	defer func() {
		r.mu.Lock()
		if again = r.resyncing[user]; again {
			r.resyncing[user] = false
		} else {
			delete(r.resyncing, user)
		}
		r.mu.Unlock()
		select {
		case <-s.stop:
			again = false
			r.mu.Lock()
			delete(r.resyncing, user)
			r.mu.Unlock()
		default:
		}
	}()
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	case <-s.stop:
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.o.Timeout)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := s.resync(ctx, user); err != nil {
		s.log.Info("device list of a remote user not refreshed", "user", user, "err", err)
	}
	return false
}

// resync replaces the cache entry of a remote user with the list their server answers.
func (s *Service) resync(ctx context.Context, user string) error {
	d, err := s.remote.o.Federation.UserDevices(ctx, id.UserID(user).Homeserver(), user)
	if err != nil {
		return err
	}
	if d.UserID != user {
		return errors.New("answer is about another user")
	}
	e := &remoteUser{streamID: int64(d.StreamID), devices: map[string]json.RawMessage{}}
	for _, dev := range d.Devices {
		if dev.DeviceID == "" || !isObject(dev.Keys) {
			continue
		}
		k, err := withDisplayName(dev.Keys, dev.DisplayName)
		if err != nil {
			continue
		}
		e.devices[dev.DeviceID] = k
	}
	if isObject(d.MasterKey) {
		e.master = d.MasterKey
	}
	if isObject(d.SelfSigningKey) {
		e.selfSigning = d.SelfSigningKey
	}
	if !s.trackable(user) {
		s.remote.drop(user) // no shared room any more: updates would not reach us
		return nil
	}
	s.remote.put(user, e)
	return nil
}

// markRemoteChanged records a remote user's device-list change in the device-list stream and
// wakes the local users sharing a room with them (one note per shared room, since the sync
// notifier only knows local members).
func (s *Service) markRemoteChanged(user string) error {
	return s.st.Update(func(txn *store.Txn) error {
		rooms, err := s.sharedRooms(txn, user)
		if err != nil {
			return err
		}
		if len(rooms) == 0 {
			return nil // no local user can see them: nothing to tell
		}
		pos, err := txn.MarkDeviceListChanged(user)
		if err != nil {
			return err
		}
		for _, room := range rooms {
			txn.Notify(pos, change.Change{Pos: pos, Kind: change.DeviceKeys, User: user, Room: room})
		}
		return nil
	})
}

// sharedRooms lists the rooms a remote user is joined to that have a local joined member. A
// remote user has no membership index, so their member event is read from the state of each
// room a local user is joined to (a room no local user is in any more is history here: its
// state is no longer kept current).
func (s *Service) sharedRooms(txn *store.Txn, user string) ([]uint64, error) {
	local, err := localJoinedRooms(txn)
	if err != nil {
		return nil, err
	}
	return sharedRoomsIn(txn, user, local)
}

// sharedRoomsIn is sharedRooms over a list of rooms with local joined members.
func sharedRoomsIn(txn *store.Txn, user string, local []uint64) ([]uint64, error) {
	sk, err := txn.StateKeyNID("m.room.member", user, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, nid := range local {
		ok, err := joinedBy(txn, nid, sk)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, nid)
		}
	}
	return out, nil
}

// joinedBy reports whether the member state key sk is joined in room.
func joinedBy(txn *store.Txn, room, sk uint64) (bool, error) {
	pos, err := txn.CurrentState(room, sk)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ev, err := txn.Event(pos)
	if err != nil {
		return false, err
	}
	l, err := events.ParseLite(ev.PDU)
	if err != nil {
		return false, nil
	}
	return l.Membership() == "join", nil
}

func containsID(ids []int64, v int64) bool {
	for _, x := range ids {
		if x == v {
			return true
		}
	}
	return false
}

func isObject(b json.RawMessage) bool { return len(b) > 0 && b[0] == '{' && json.Valid(b) }

// withDisplayName puts a device's display name into its keys' unsigned section, where
// /keys/query shows it.
func withDisplayName(keys json.RawMessage, name string) (json.RawMessage, error) {
	if !isObject(keys) {
		return nil, errors.New("device keys are not an object")
	}
	if name == "" {
		return keys, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(keys, &m); err != nil {
		return nil, err
	}
	unsigned := map[string]any{}
	if raw, ok := m["unsigned"]; ok {
		_ = json.Unmarshal(raw, &unsigned)
	}
	unsigned["device_display_name"] = name
	b, err := json.Marshal(unsigned)
	if err != nil {
		return nil, err
	}
	m["unsigned"] = b
	return json.Marshal(m)
}
