package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/devices"
	"github.com/hearth-home/hearth/matrix/store"
)

// Names the bridge uses on the Matrix side.
const (
	// NamespacePrefix starts the localpart of the bot and every virtual user.
	NamespacePrefix = "_hearth_"
	// BotLocalpart is the bridge bot.
	BotLocalpart = "_hearth_bot"
	// RegistrationID is the registration's id.
	RegistrationID = "hearth-devices"
	// StateType is the device state event; its state_key is the device ID.
	StateType = "org.hearth.device"
	// ReadingField is the structured field of a reading notice.
	ReadingField = "org.hearth.device.reading"
	// CommandType is the structured command event.
	CommandType = "org.hearth.device.command"
	// ResultField is the structured field of a command reply.
	ResultField = "org.hearth.device.result"
)

var (
	stateEventType   = event.Type{Type: StateType, Class: event.StateEventType}
	commandEventType = event.Type{Type: CommandType, Class: event.MessageEventType}
)

// Names of the bridge's records (store.DeviceBridgeState).
const (
	recRegistration = "registration"
	recLayout       = "layout"
)

// LoadRegistration returns the bridge's appservice registration, with tokens made on first use
// and kept in the store, pointing at url (the bridge's transaction listener). The user
// namespace @_hearth_.*:<server> is exclusive, so nobody can register a name the bridge uses.
func LoadRegistration(st *store.Store, serverName, url string) (*mas.Registration, error) {
	var tokens struct{ AS, HS string }
	err := st.Update(func(txn *store.Txn) error {
		raw, err := txn.DeviceBridgeState(recRegistration)
		if err == nil {
			return json.Unmarshal(raw, &tokens)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		tokens.AS, tokens.HS = randomToken(), randomToken()
		raw, err = json.Marshal(tokens)
		if err != nil {
			return err
		}
		return txn.SetDeviceBridgeState(recRegistration, raw)
	})
	if err != nil {
		return nil, fmt.Errorf("bridge registration: %w", err)
	}
	reg := &mas.Registration{
		ID:              RegistrationID,
		URL:             url,
		AppToken:        tokens.AS,
		ServerToken:     tokens.HS,
		SenderLocalpart: BotLocalpart,
	}
	reg.Namespaces.UserIDs = mas.NamespaceList{{
		Regex:     "@" + regexp.QuoteMeta(NamespacePrefix) + ".*:" + regexp.QuoteMeta(serverName),
		Exclusive: true,
	}}
	return reg, nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (b *Bridge) loadLayout() error {
	return b.opt.Store.View(func(txn *store.Txn) error {
		raw, err := txn.DeviceBridgeState(recLayout)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bridge layout: %w", err)
		}
		if err := json.Unmarshal(raw, &b.saved); err != nil {
			return fmt.Errorf("bridge layout: %w", err)
		}
		if b.saved.Areas == nil {
			b.saved.Areas = map[string]id.RoomID{}
		}
		if b.saved.Joined == nil {
			b.saved.Joined = map[string]id.RoomID{}
		}
		return nil
	})
}

// saveLayout writes the layout; roomsMu is held.
func (b *Bridge) saveLayout() error {
	raw, err := json.Marshal(b.saved)
	if err != nil {
		return err
	}
	return b.opt.Store.Update(func(txn *store.Txn) error { return txn.SetDeviceBridgeState(recLayout, raw) })
}

// createRoom makes a bridge room with the admins invited at power level 100. Rooms are
// version 12, where the bot as creator has unlimited power and is not listed in users.
func (b *Bridge) createRoom(ctx context.Context, name, topic string, space bool, initial []*event.Event) (id.RoomID, error) {
	admins, err := b.opt.Admins(ctx)
	if err != nil {
		return "", fmt.Errorf("list admins: %w", err)
	}
	users := map[id.UserID]int{}
	for _, a := range admins {
		users[a] = 100
	}
	req := &mautrix.ReqCreateRoom{
		Name:         name,
		Topic:        topic,
		Preset:       "private_chat",
		Invite:       admins,
		RoomVersion:  id.RoomV12,
		InitialState: initial,
		PowerLevelOverride: &event.PowerLevelsEventContent{
			Users:  users,
			Events: map[string]int{StateType: 100, event.StatePowerLevels.Type: 100},
		},
	}
	if space {
		req.CreationContent = map[string]any{"type": "m.space"}
	}
	resp, err := b.as.BotIntent().CreateRoom(ctx, req)
	if err != nil {
		return "", fmt.Errorf("create room %q: %w", name, err)
	}
	return resp.RoomID, nil
}

func (b *Bridge) ensureSpace(ctx context.Context) error {
	b.roomsMu.Lock()
	defer b.roomsMu.Unlock()
	if b.saved.Space != "" {
		return nil
	}
	room, err := b.createRoom(ctx, "Home", "The house's devices, one room per area", true, nil)
	if err != nil {
		return err
	}
	b.saved.Space = room
	return b.saveLayout()
}

// welcomeAdmins invites the server's admins to every bridge room they were never in, with power
// level 100: rooms invite the admins of their creation time, and this catches up admins made
// since. An admin who left a room is not invited again.
func (b *Bridge) welcomeAdmins(ctx context.Context) error {
	admins, err := b.opt.Admins(ctx)
	if err != nil || len(admins) == 0 {
		return err
	}
	b.roomsMu.Lock()
	rooms := []id.RoomID{b.saved.Space}
	for _, r := range b.saved.Areas {
		rooms = append(rooms, r)
	}
	b.roomsMu.Unlock()
	bot := b.as.BotIntent()
	for _, room := range rooms {
		var newcomers []id.UserID
		for _, a := range admins {
			var m event.MemberEventContent
			if err := bot.StateEvent(ctx, room, event.StateMember, a.String(), &m); err != nil && errors.Is(err, mautrix.MNotFound) {
				newcomers = append(newcomers, a)
			}
		}
		if len(newcomers) == 0 {
			continue
		}
		pl, err := bot.PowerLevels(ctx, room)
		if err != nil {
			return fmt.Errorf("power levels of %s: %w", room, err)
		}
		for _, a := range newcomers {
			pl.SetUserLevel(a, 100)
		}
		if _, err := bot.SetPowerLevels(ctx, room, pl); err != nil {
			return fmt.Errorf("raise admins in %s: %w", room, err)
		}
		for _, a := range newcomers {
			if _, err := bot.InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: a}); err != nil {
				return fmt.Errorf("invite %s to %s: %w", a, room, err)
			}
		}
	}
	return nil
}

// Space is the "Home" space's room ID ("" before Run created it).
func (b *Bridge) Space() id.RoomID {
	b.roomsMu.Lock()
	defer b.roomsMu.Unlock()
	return b.saved.Space
}

// AreaRoom is the room of an area ("" = the Home room for unassigned devices), if made.
func (b *Bridge) AreaRoom(area string) id.RoomID {
	b.roomsMu.Lock()
	defer b.roomsMu.Unlock()
	return b.saved.Areas[areaKey(area)]
}

func areaKey(area string) string { return strings.ToLower(strings.TrimSpace(area)) }

// areaOfRoom is the area a bridge room stands for; ok is false for rooms the bridge did not make.
func (b *Bridge) areaOfRoom(room id.RoomID) (area string, ok bool) {
	b.roomsMu.Lock()
	defer b.roomsMu.Unlock()
	for k, r := range b.saved.Areas {
		if r == room {
			return k, true
		}
	}
	return "", false
}

// ensureAreaRoom returns the room of an area, making it (as a child of the space) first.
func (b *Bridge) ensureAreaRoom(ctx context.Context, area string) (id.RoomID, error) {
	key := areaKey(area)
	b.roomsMu.Lock()
	defer b.roomsMu.Unlock()
	if r, ok := b.saved.Areas[key]; ok {
		return r, nil
	}
	name := strings.TrimSpace(area)
	if name == "" {
		name = "Home"
	}
	via := []string{b.opt.ServerName}
	parent := &event.Event{
		Type:     event.StateSpaceParent,
		StateKey: new(b.saved.Space.String()),
		Content:  event.Content{Parsed: &event.SpaceParentEventContent{Via: via, Canonical: true}},
	}
	room, err := b.createRoom(ctx, name, "Devices in "+name, false, []*event.Event{parent})
	if err != nil {
		return "", err
	}
	if _, err := b.as.BotIntent().SendStateEvent(ctx, b.saved.Space, event.StateSpaceChild, room.String(),
		&event.SpaceChildEventContent{Via: via}); err != nil {
		return "", fmt.Errorf("add %s to the space: %w", name, err)
	}
	b.saved.Areas[key] = room
	return room, b.saveLayout()
}

// stateContent is the org.hearth.device state event (docs/devices.md).
type stateContent struct {
	Device  *devices.Device `json:"device,omitempty"`
	State   *devices.State  `json:"state,omitempty"`
	UserID  id.UserID       `json:"user_id,omitempty"`
	Removed bool            `json:"removed,omitempty"`
}

// sync brings one device's Matrix side up to date with the registry.
func (b *Bridge) sync(ctx context.Context, devID string, d *devState, first time.Time) error {
	e, ok := b.opt.Registry.Get(devID)
	if !ok {
		return b.dropDevice(ctx, devID)
	}
	room, err := b.ensureAreaRoom(ctx, e.Device.Area)
	if err != nil {
		return err
	}
	pup := b.puppet(devID)
	if err := b.ensureMember(ctx, devID, pup, room); err != nil {
		return err
	}
	if d.named != e.Device.Name && e.Device.Name != "" {
		if err := pup.SetDisplayName(ctx, e.Device.Name); err != nil {
			return fmt.Errorf("display name: %w", err)
		}
		d.named = e.Device.Name
	}
	now := time.Now()
	b.devMu.Lock()
	post, wait := d.gate.decide(e.State, now)
	firstPost := !d.gate.posted
	prev := d.gate.last
	// The state event follows every posted change except sensor numbers, which it takes at
	// most once per StateInterval: a reading is already in the notice, and each state event
	// is a room state change (a store write and a new state snapshot).
	stateDue := d.posted != e.Device || firstPost ||
		(post && !onlyNumbers(prev, e.State)) ||
		((post || d.stateDirty) && now.Sub(d.stateAt) >= b.opt.StateInterval)
	if post && !stateDue {
		d.stateDirty = true
		b.arm(ctx, devID, d, d.stateAt.Add(b.opt.StateInterval).Sub(now))
	}
	if wait > 0 {
		b.arm(ctx, devID, d, wait)
	}
	b.devMu.Unlock()
	if post && !firstPost {
		// The notice goes first: it is what people and the latency budget wait for.
		content := map[string]any{
			"msgtype": "m.notice",
			"body":    describe(e.Device, e.State),
			ReadingField: map[string]any{
				"device":  devID,
				"state":   e.State,
				"changed": changedFields(prev, e.State),
			},
		}
		sendStart := time.Now()
		if _, err := b.sendMessage(ctx, room, pup, event.EventMessage, content); err != nil {
			return fmt.Errorf("reading: %w", err)
		}
		if obs := b.observer.Load(); obs != nil && !first.IsZero() {
			(*obs)(devID, first, sendStart, time.Now())
		}
	}
	if post {
		b.devMu.Lock()
		d.gate.mark(e.State, now)
		b.devMu.Unlock()
	}
	if !stateDue {
		return nil
	}
	st := e.State
	if _, err := b.as.BotIntent().SendStateEvent(ctx, room, stateEventType, devID,
		&stateContent{Device: &e.Device, State: &st, UserID: pup.UserID}); err != nil {
		return fmt.Errorf("state event: %w", err)
	}
	b.devMu.Lock()
	d.posted, d.stateAt, d.stateDirty = e.Device, now, false
	b.devMu.Unlock()
	return nil
}

// arm makes sure the device is looked at again within wait; devMu is held.
func (b *Bridge) arm(ctx context.Context, devID string, d *devState, wait time.Duration) {
	at := time.Now().Add(wait)
	if d.timer != nil {
		if !d.timerAt.After(at) {
			return
		}
		d.timer.Stop()
	}
	d.timerAt = at
	d.timer = time.AfterFunc(wait, func() {
		b.devMu.Lock()
		d.timer = nil
		b.devMu.Unlock()
		b.schedule(ctx, devID, time.Time{})
	})
}

// onlyNumbers reports whether two states differ at most in sensor numbers (value, readings).
func onlyNumbers(a, b devices.State) bool {
	a.Value, b.Value, a.Readings, b.Readings, a.LastSeen, b.LastSeen = nil, nil, nil, nil, time.Time{}, time.Time{}
	return a.Available == b.Available && eqPtr(a.On, b.On) && eqPtr(a.Detected, b.Detected) &&
		eqPtr(a.Brightness, b.Brightness) && eqPtr(a.ColorTemp, b.ColorTemp) && eqPtr(a.Color, b.Color)
}

// ensureMember joins the device's virtual user to room (leaving its previous room when the
// device moved to another area).
func (b *Bridge) ensureMember(ctx context.Context, devID string, pup *mas.IntentAPI, room id.RoomID) error {
	b.roomsMu.Lock()
	old := b.saved.Joined[devID]
	b.roomsMu.Unlock()
	if old == room {
		return pup.EnsureRegistered(ctx)
	}
	if err := pup.EnsureJoined(ctx, room); err != nil {
		return fmt.Errorf("join %s: %w", room, err)
	}
	if old != "" {
		b.leave(ctx, devID, pup, old)
	}
	b.roomsMu.Lock()
	defer b.roomsMu.Unlock()
	b.saved.Joined[devID] = room
	return b.saveLayout()
}

// leave marks the device removed in room's state and takes its virtual user out.
func (b *Bridge) leave(ctx context.Context, devID string, pup *mas.IntentAPI, room id.RoomID) {
	if _, err := b.as.BotIntent().SendStateEvent(ctx, room, stateEventType, devID, &stateContent{Removed: true}); err != nil {
		b.log.Warn("device bridge: clear state", "device", devID, "err", err)
	}
	if _, err := pup.LeaveRoom(ctx, room); err != nil {
		b.log.Warn("device bridge: leave", "device", devID, "err", err)
	}
}

func (b *Bridge) dropDevice(ctx context.Context, devID string) error {
	b.roomsMu.Lock()
	room, ok := b.saved.Joined[devID]
	b.roomsMu.Unlock()
	b.devMu.Lock()
	if d := b.devs[devID]; d != nil {
		d.gate = gate{minInterval: b.opt.MinInterval, minDelta: b.opt.MinDelta}
		d.posted, d.named = devices.Device{}, ""
	}
	b.devMu.Unlock()
	if !ok {
		return nil
	}
	b.leave(ctx, devID, b.puppet(devID), room)
	b.roomsMu.Lock()
	defer b.roomsMu.Unlock()
	delete(b.saved.Joined, devID)
	return b.saveLayout()
}
