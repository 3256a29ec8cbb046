package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/store"
)

// Rooms tells which servers take part in a room (those with at least one joined member).
type Rooms interface {
	JoinedServers(ctx context.Context, roomID string) ([]string, error)
}

// UserRooms lists the rooms a local user is joined to (presence and device lists go to every
// server sharing a room with the user).
type UserRooms interface {
	JoinedRooms(ctx context.Context, userID string) ([]string, error)
}

// TypingState reads the in-memory typing table.
type TypingState interface {
	IsTyping(roomID, userID string) bool
}

// PresenceState reads the in-memory presence table; ok is false for an unknown user.
type PresenceState interface {
	Presence(userID string) (p PresenceUpdate, ok bool)
}

// ReceiptState reads the receipt written at a stream position; found is false if a later
// receipt replaced it.
type ReceiptState interface {
	ReceiptAt(ctx context.Context, roomID string, pos uint64) (typ string, r ReadReceipt, found bool, err error)
}

// Devices reads a local user's devices and keys.
type Devices interface {
	// Device returns the display name and the signed device keys (nil if none were uploaded);
	// found is false once the device is deleted.
	Device(ctx context.Context, userID, deviceID string) (displayName string, keys json.RawMessage, found bool, err error)
	// DeviceIDs lists the user's current devices.
	DeviceIDs(ctx context.Context, userID string) ([]string, error)
	// CrossSigningKeys returns the master and self-signing keys (nil when absent).
	CrossSigningKeys(ctx context.Context, userID string) (master, selfSigning json.RawMessage, err error)
}

// ProducerOptions wire a Producer. Sender, ServerName and Rooms are required; a nil lookup
// turns its kind of EDU off.
type ProducerOptions struct {
	ServerName string
	Sender     *Sender
	Rooms      Rooms
	UserRooms  UserRooms
	Typing     TypingState
	Presence   PresenceState
	Receipts   ReceiptState
	Devices    Devices
	Logger     *slog.Logger
}

// Producer turns local changes announced on the bus into EDUs for the servers concerned.
// Handle never blocks: changes wait in a queue that coalesces repeats (the EDU is built from
// the state at the time it is handled, so two typing changes of one user make one EDU).
type Producer struct {
	o   ProducerOptions
	log *slog.Logger

	mu      sync.Mutex
	queue   []workKey
	queued  map[workKey]bool
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	started bool
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
}

// workKey identifies one piece of pending work; Pos is set only for receipts, which are read
// by position.
type workKey struct {
	Kind   change.Kind
	RoomID string
	User   string
	Device string
	Pos    uint64
}

// NewProducer builds a Producer; Start runs it.
func NewProducer(o ProducerOptions) (*Producer, error) {
	if o.ServerName == "" || o.Sender == nil || o.Rooms == nil {
		return nil, errors.New("federation producer: ServerName, Sender and Rooms are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Producer{
		o: o, log: o.Logger.With("component", "federation-edu"),
		queued: map[workKey]bool{}, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}, nil
}

// Handle takes one change from the bus. It is cheap and safe to call inline from
// bus.Subscribe. Changes of remote users and kinds that do not federate are ignored.
// (To-device messages for remote users do not pass here: see SendToDevice.)
func (p *Producer) Handle(c change.Change) {
	if c.Kind == change.Event {
		if !p.localJoin(c) { // producer_join.go
			return
		}
		c.User = *c.StateKey
	}
	if ServerOf(c.User) != p.o.ServerName {
		return
	}
	k := workKey{Kind: c.Kind, User: c.User}
	switch c.Kind {
	case change.Event:
		k.RoomID = c.RoomID
	case change.Typing:
		if p.o.Typing == nil || c.RoomID == "" {
			return
		}
		k.RoomID = c.RoomID
	case change.Receipt:
		if p.o.Receipts == nil || c.RoomID == "" {
			return
		}
		k.RoomID, k.Pos = c.RoomID, c.Pos
	case change.Presence:
		if p.o.Presence == nil || p.o.UserRooms == nil {
			return
		}
	case change.Devices, change.DeviceKeys:
		if p.o.Devices == nil || p.o.UserRooms == nil {
			return
		}
		k.Device = c.Device
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.queued[k] {
		return
	}
	p.queued[k] = true
	p.queue = append(p.queue, k)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Start runs the goroutine that turns queued changes into EDUs.
func (p *Producer) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed {
		return
	}
	p.started = true
	go p.loop()
}

// Close stops the goroutine and waits for it; changes still queued are dropped.
func (p *Producer) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	started := p.started
	close(p.stop)
	p.mu.Unlock()
	p.cancel()
	if started {
		<-p.done
	}
}

func (p *Producer) loop() {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
		}
		for {
			p.mu.Lock()
			if len(p.queue) == 0 || p.closed {
				p.mu.Unlock()
				break
			}
			k := p.queue[0]
			p.queue = p.queue[1:]
			delete(p.queued, k)
			p.mu.Unlock()
			if err := p.handle(p.ctx, k); err != nil {
				p.log.Warn("EDU for a local change not queued", "kind", k.Kind, "user", k.User, "room", k.RoomID, "err", err)
			}
		}
	}
}

func (p *Producer) handle(ctx context.Context, k workKey) error {
	switch k.Kind {
	case change.Typing:
		edu, err := Typing(k.RoomID, k.User, p.o.Typing.IsTyping(k.RoomID, k.User))
		if err != nil {
			return err
		}
		return p.toRoom(ctx, k.RoomID, edu)
	case change.Receipt:
		typ, r, found, err := p.o.Receipts.ReceiptAt(ctx, k.RoomID, k.Pos)
		if err != nil || !found || typ != "m.read" { // m.read.private stays here
			return err
		}
		edus, err := Receipts([]ReadReceipt{r})
		if err != nil {
			return err
		}
		return p.toRoom(ctx, k.RoomID, edus...)
	case change.Presence:
		pu, ok := p.o.Presence.Presence(k.User)
		if !ok {
			return nil
		}
		edu, err := Presence([]PresenceUpdate{pu})
		if err != nil {
			return err
		}
		return p.toSharing(ctx, k.User, edu)
	case change.Devices, change.DeviceKeys:
		return p.devices(ctx, k)
	case change.Event:
		return p.joinAnnounce(ctx, k) // producer_join.go
	}
	return nil
}

// devices announces a device change. A change naming a device updates that device (deleted if
// it is gone); a DeviceKeys change without one is a cross-signing change; a Devices change
// without one re-announces every current device.
func (p *Producer) devices(ctx context.Context, k workKey) error {
	var edus []EDU
	switch {
	case k.Device != "" && k.Device != "*":
		e, err := p.deviceUpdate(ctx, k.User, k.Device)
		if err != nil {
			return err
		}
		edus = append(edus, e)
	case k.Kind == change.DeviceKeys:
		master, self, err := p.o.Devices.CrossSigningKeys(ctx, k.User)
		if err != nil {
			return fmt.Errorf("cross-signing keys of %s: %w", k.User, err)
		}
		if len(master) == 0 && len(self) == 0 {
			return nil
		}
		e, err := SigningKeyUpdate(k.User, master, self)
		if err != nil {
			return err
		}
		edus = append(edus, e)
	default:
		ids, err := p.o.Devices.DeviceIDs(ctx, k.User)
		if err != nil {
			return fmt.Errorf("devices of %s: %w", k.User, err)
		}
		sort.Strings(ids)
		for _, id := range ids {
			e, err := p.deviceUpdate(ctx, k.User, id)
			if err != nil {
				return err
			}
			edus = append(edus, e)
		}
	}
	if len(edus) == 0 {
		return nil
	}
	return p.toSharing(ctx, k.User, edus...)
}

// deviceUpdate builds one m.device_list_update with the next stream ID of the user. The ID is
// committed before the EDU is queued: a crash in between leaves a gap that makes receivers
// resync the user's device list, which is the spec's remedy for a missed update.
func (p *Producer) deviceUpdate(ctx context.Context, user, device string) (EDU, error) {
	name, keys, found, err := p.o.Devices.Device(ctx, user, device)
	if err != nil {
		return EDU{}, fmt.Errorf("device %s of %s: %w", device, user, err)
	}
	var prev, next uint64
	if err := p.o.Sender.st.Update(func(txn *store.Txn) error {
		var err error
		prev, next, err = txn.NextFedDeviceListID(user)
		return err
	}); err != nil {
		return EDU{}, fmt.Errorf("device list stream of %s: %w", user, err)
	}
	u := DeviceListUpdate{UserID: user, DeviceID: device, StreamID: int64(next)}
	if prev > 0 {
		u.PrevID = []int64{int64(prev)}
	}
	if found {
		u.DisplayName, u.Keys = name, keys
	} else {
		u.Deleted = true
	}
	return DeviceList(u)
}

func (p *Producer) toRoom(ctx context.Context, roomID string, edus ...EDU) error {
	servers, err := p.o.Rooms.JoinedServers(ctx, roomID)
	if err != nil {
		return fmt.Errorf("servers in %s: %w", roomID, err)
	}
	return p.o.Sender.Enqueue(servers, nil, edus)
}

func (p *Producer) toSharing(ctx context.Context, user string, edus ...EDU) error {
	rooms, err := p.o.UserRooms.JoinedRooms(ctx, user)
	if err != nil {
		return fmt.Errorf("rooms of %s: %w", user, err)
	}
	seen := map[string]bool{}
	var servers []string
	for _, r := range rooms {
		ss, err := p.o.Rooms.JoinedServers(ctx, r)
		if err != nil {
			return fmt.Errorf("servers in %s: %w", r, err)
		}
		for _, s := range ss {
			if !seen[s] {
				seen[s] = true
				servers = append(servers, s)
			}
		}
	}
	return p.o.Sender.Enqueue(servers, nil, edus)
}

// SendToDevice queues to-device messages (user ID -> device ID or "*" -> content) for users
// on other servers, one m.direct_to_device per destination, all in one store transaction.
// Recipients on this server are skipped (they go to the local inboxes). It returns after the
// commit, so a client's 200 means the messages will be delivered. An error means bad input
// (the caller answers 400) or a store failure.
func (p *Producer) SendToDevice(sender, evType, messageID string, messages map[string]map[string]json.RawMessage) error {
	byServer := map[string]map[string]map[string]json.RawMessage{}
	for user, devs := range messages {
		server := ServerOf(user)
		if server == "" {
			return fmt.Errorf("recipient %q is not a user ID", user)
		}
		if server == p.o.ServerName {
			continue
		}
		if byServer[server] == nil {
			byServer[server] = map[string]map[string]json.RawMessage{}
		}
		byServer[server][user] = devs
	}
	servers := make([]string, 0, len(byServer))
	for s := range byServer {
		servers = append(servers, s)
	}
	sort.Strings(servers)
	var bs []batch
	for _, s := range servers {
		edu, err := DirectToDevice(sender, evType, messageID, byServer[s])
		if err != nil {
			return err
		}
		bs = append(bs, batch{dests: []string{s}, edus: []EDU{edu}})
	}
	return p.o.Sender.enqueue(bs)
}
