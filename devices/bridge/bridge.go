package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/devices"
	"github.com/hearth-home/hearth/matrix/store"
)

// Options configure a Bridge.
type Options struct {
	// ServerName is the homeserver's name; HomeserverURL its client-server API (loopback).
	ServerName    string
	HomeserverURL string
	// Registration is the bridge's appservice registration (see LoadRegistration); the
	// homeserver must have been given the same one.
	Registration *mas.Registration
	// Listener receives the homeserver's transactions (the registration's URL points at it).
	Listener net.Listener
	// Store keeps the bridge's records (rooms made, crypto state).
	Store *store.Store
	// Registry is where the devices are.
	Registry *devices.Registry
	// Admins lists the users invited to every bridge room with power level 100.
	Admins func(ctx context.Context) ([]id.UserID, error)
	// CommandPowerLevel is the power level a user needs in a room to command devices (default 50).
	CommandPowerLevel int
	// AllowRemote lets users of other servers command devices (still subject to the power level).
	AllowRemote bool
	// MinInterval is the shortest time between two posts about one device; MinDelta the
	// smallest change of a sensor number that is posted (see gate.go).
	MinInterval time.Duration
	MinDelta    float64
	// StateInterval is the longest a changed sensor number waits before the device's state
	// event takes it (default 1 minute); other changes go to the state event at once.
	StateInterval time.Duration
	// Crypto gives the bot a device for encrypted rooms; nil leaves encrypted rooms unanswered.
	Crypto *CryptoOptions
	// ConfirmTimeout is how long a drone takeoff waits for "confirm" (default 60 s).
	ConfirmTimeout time.Duration
	Log            *slog.Logger
}

// Bridge connects a Registry to Matrix rooms.
type Bridge struct {
	opt Options
	log *slog.Logger
	as  *mas.AppService
	ss  *mautrix.MemoryStateStore // the appservice's state store, also the crypto state store
	srv *http.Server

	roomsMu sync.Mutex // serialises room creation and the saved layout
	saved   layout

	devMu sync.Mutex
	devs  map[string]*devState

	workers chan struct{} // bounds concurrent device updates and command handlers

	confirmMu sync.Mutex
	confirms  map[string]pendingConfirm

	crypto *cryptoHelper
	// encChecked lists the rooms whose encryption state was read from the server: the state
	// store only learns what transactions delivered since the start.
	encMu      sync.Mutex
	encChecked map[id.RoomID]bool

	observer atomic.Pointer[PostObserver]
}

// layout is what the bridge made, persisted so a restart reuses the rooms.
type layout struct {
	Space  id.RoomID            `json:"space"`
	Areas  map[string]id.RoomID `json:"areas"`  // normalised area -> room; "" is the Home room
	Joined map[string]id.RoomID `json:"joined"` // device ID -> room its virtual user joined
}

// devState is the bridge's per-device bookkeeping. busy/dirty make sure one device is
// handled by one goroutine at a time while changes that arrive meanwhile are not lost.
type devState struct {
	busy, dirty bool
	first       time.Time // when the oldest unhandled change was recorded
	gate        gate
	timer       *time.Timer
	timerAt     time.Time
	posted      devices.Device // description last written to the state event
	stateAt     time.Time      // when the state event was last written
	stateDirty  bool           // a posted reading is not in the state event yet
	named       string         // display name last set on the virtual user
}

type pendingConfirm struct {
	ids     []string
	cmd     devices.Command
	expires time.Time
}

// New builds the bridge; Run starts it.
func New(opt Options) (*Bridge, error) {
	if opt.Registration == nil || opt.Listener == nil || opt.Store == nil || opt.Registry == nil {
		return nil, errors.New("bridge: Registration, Listener, Store and Registry are required")
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.CommandPowerLevel == 0 {
		opt.CommandPowerLevel = 50
	}
	if opt.StateInterval == 0 {
		opt.StateInterval = time.Minute
	}
	if opt.ConfirmTimeout == 0 {
		opt.ConfirmTimeout = time.Minute
	}
	if opt.Admins == nil {
		opt.Admins = func(context.Context) ([]id.UserID, error) { return nil, nil }
	}
	ss := mautrix.NewMemoryStateStore().(*mautrix.MemoryStateStore)
	as, err := mas.CreateFull(mas.CreateOpts{
		StateStore:       ss,
		Registration:     opt.Registration,
		HomeserverDomain: opt.ServerName,
		HomeserverURL:    opt.HomeserverURL,
	})
	if err != nil {
		return nil, fmt.Errorf("bridge: appservice: %w", err)
	}
	as.Log = zerolog.Nop()
	// The homeserver is on loopback: a failure is not a flaky network, so retry little.
	as.DefaultHTTPRetries = 1
	b := &Bridge{
		opt:        opt,
		log:        opt.Log,
		as:         as,
		ss:         ss,
		devs:       map[string]*devState{},
		workers:    make(chan struct{}, 8),
		confirms:   map[string]pendingConfirm{},
		encChecked: map[id.RoomID]bool{},
		saved:      layout{Areas: map[string]id.RoomID{}, Joined: map[string]id.RoomID{}},
	}
	b.srv = &http.Server{Handler: as.Router, ReadHeaderTimeout: 10 * time.Second}
	// Loaded here, not in Run, so the rooms of an earlier run are known from the start.
	if err := b.loadLayout(); err != nil {
		return nil, err
	}
	return b, nil
}

// PostObserver is told about every reading notice the bridge sent: when the registry recorded
// the change, when the send began and when the homeserver acknowledged it. The benchmark uses
// it to split the latency into its stages.
type PostObserver func(deviceID string, changed, sendStart, sent time.Time)

// SetPostObserver installs (or, with nil, removes) the observer.
func (b *Bridge) SetPostObserver(f PostObserver) {
	if f == nil {
		b.observer.Store(nil)
		return
	}
	b.observer.Store(&f)
}

// BotUserID is the bridge bot's user ID.
func (b *Bridge) BotUserID() id.UserID { return b.as.BotMXID() }

// Run serves transactions and mirrors the registry until ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- b.srv.Serve(b.opt.Listener) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.srv.Shutdown(sctx)
	}()
	bot := b.as.BotIntent()
	if err := bot.EnsureRegistered(ctx); err != nil {
		return fmt.Errorf("bridge: register bot: %w", err)
	}
	_ = bot.SetDisplayName(ctx, "Hearth")
	if b.opt.Crypto != nil {
		ch, err := newCryptoHelper(ctx, b, *b.opt.Crypto)
		if err != nil {
			return fmt.Errorf("bridge: crypto: %w", err)
		}
		b.crypto = ch
		go ch.run(ctx)
	}
	if err := b.ensureSpace(ctx); err != nil {
		return err
	}
	if err := b.welcomeAdmins(ctx); err != nil {
		b.log.Warn("device bridge: invite admins", "err", err)
	}
	sub := b.opt.Registry.Subscribe()
	defer sub.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { b.eventLoop(ctx) })
	for {
		select {
		case <-ctx.Done():
			b.stopTimers()
			return nil
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("bridge: transaction listener: %w", err)
		case <-sub.Wait():
			for _, c := range sub.Take() {
				b.schedule(ctx, c.ID, c.First)
			}
		}
	}
}

func (b *Bridge) stopTimers() {
	b.devMu.Lock()
	defer b.devMu.Unlock()
	for _, d := range b.devs {
		if d.timer != nil {
			d.timer.Stop()
		}
	}
}

// schedule makes sure the device is handled soon by exactly one goroutine.
func (b *Bridge) schedule(ctx context.Context, devID string, first time.Time) {
	b.devMu.Lock()
	d := b.devs[devID]
	if d == nil {
		d = &devState{gate: gate{minInterval: b.opt.MinInterval, minDelta: b.opt.MinDelta}}
		b.devs[devID] = d
	}
	if d.first.IsZero() || (!first.IsZero() && first.Before(d.first)) {
		d.first = first
	}
	if d.busy {
		d.dirty = true
		b.devMu.Unlock()
		return
	}
	d.busy = true
	b.devMu.Unlock()
	go func() {
		select {
		case b.workers <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-b.workers }()
		for {
			b.devMu.Lock()
			d.dirty = false
			first := d.first
			d.first = time.Time{}
			b.devMu.Unlock()
			if err := b.sync(ctx, devID, d, first); err != nil && ctx.Err() == nil {
				b.log.Warn("device bridge: update failed", "device", devID, "err", err)
			}
			b.devMu.Lock()
			if !d.dirty || ctx.Err() != nil {
				d.busy = false
				b.devMu.Unlock()
				return
			}
			b.devMu.Unlock()
		}
	}()
}

// Forget removes a device from the registry and its virtual user from the rooms.
func (b *Bridge) Forget(ctx context.Context, devID string) error {
	if _, ok := b.opt.Registry.Get(devID); !ok {
		b.roomsMu.Lock()
		_, joined := b.saved.Joined[devID]
		b.roomsMu.Unlock()
		if !joined {
			return fmt.Errorf("forget %s: %w", devID, devices.ErrUnknownDevice)
		}
	}
	b.opt.Registry.Remove(devID)
	b.schedule(ctx, devID, time.Now())
	return nil
}

// puppet returns the intent of a device's virtual user.
func (b *Bridge) puppet(devID string) *mas.IntentAPI {
	return b.as.Intent(id.NewUserID(PuppetLocalpart(devID), b.opt.ServerName))
}

// PuppetLocalpart is the localpart of a device's virtual user: "_hearth_" and the device ID
// with every character outside [a-z0-9._-] written as =xx (so IDs stay distinct).
func PuppetLocalpart(devID string) string {
	const hexd = "0123456789abcdef"
	out := []byte(NamespacePrefix)
	for i := 0; i < len(devID); i++ {
		c := devID[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			out = append(out, c)
		default:
			out = append(out, '=', hexd[c>>4], hexd[c&15])
		}
	}
	return string(out)
}

// isOurs reports whether a user is the bot or one of the virtual users.
func (b *Bridge) isOurs(u id.UserID) bool {
	if u == b.BotUserID() {
		return true
	}
	lp, hs, err := u.Parse()
	return err == nil && hs == b.opt.ServerName && len(lp) >= len(NamespacePrefix) && lp[:len(NamespacePrefix)] == NamespacePrefix
}

// client returns the bot's client (for sends that are not a device speaking).
func (b *Bridge) client() *mautrix.Client { return b.as.BotClient() }

// sendMessage posts a message as the bot or a virtual user, encrypted when the room is.
// Virtual users have no devices, so in an encrypted room the bot speaks for them.
func (b *Bridge) sendMessage(ctx context.Context, room id.RoomID, from *mas.IntentAPI, typ event.Type, content any) (id.EventID, error) {
	if b.crypto != nil && b.encrypted(ctx, room) {
		return b.crypto.send(ctx, room, typ, content)
	}
	if from == nil {
		from = b.as.BotIntent()
	}
	resp, err := from.SendMessageEvent(ctx, room, typ, content)
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// encrypted reports whether room is encrypted, asking the server the first time a room comes up
// so that a restart never makes the bridge talk in clear in an encrypted room.
func (b *Bridge) encrypted(ctx context.Context, room id.RoomID) bool {
	if enc, _ := b.ss.IsEncrypted(ctx, room); enc {
		return true
	}
	b.encMu.Lock()
	checked := b.encChecked[room]
	b.encChecked[room] = true
	b.encMu.Unlock()
	if checked {
		return false
	}
	var content event.EncryptionEventContent
	if err := b.client().StateEvent(ctx, room, event.StateEncryption, "", &content); err != nil || content.Algorithm == "" {
		return false
	}
	b.ss.SetEncryptionEvent(ctx, room, &content)
	return true
}
