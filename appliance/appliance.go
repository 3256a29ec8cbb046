package appliance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/bus"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/control"
	"github.com/hearth-home/hearth/matrix/accounts"
	hadmin "github.com/hearth-home/hearth/matrix/admin"
	"github.com/hearth-home/hearth/matrix/appservice"
	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/clientapi"
	"github.com/hearth-home/hearth/matrix/delayed"
	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/keys"
	"github.com/hearth-home/hearth/matrix/keys/keysync"
	"github.com/hearth-home/hearth/matrix/media"
	"github.com/hearth-home/hearth/matrix/push"
	"github.com/hearth-home/hearth/matrix/push/pushsync"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/search"
	"github.com/hearth-home/hearth/matrix/servernotices"
	"github.com/hearth-home/hearth/matrix/store"
	"github.com/hearth-home/hearth/matrix/sync"
	"github.com/hearth-home/hearth/matrix/threadsubs"
	hearthtls "github.com/hearth-home/hearth/tls"
)

// Appliance is the running homeserver and everything around it.
type Appliance struct {
	cfg      config.Config
	log      *slog.Logger
	st       *store.Store
	bus      *bus.Bus[change.Change]
	accounts *accounts.Service
	rooms    *rooms.Service
	sync     *sync.Service
	keys     *keys.Service
	search   *search.Service
	appsvc   *appservice.Service
	push     *push.Service
	metrics  *metrics
	devices  *deviceSys // devices.go; nil when devices are off
	fedsys   *fedSys    // federation.go
	media    *media.Service
	notices  *servernotices.Service // notices.go
	delayed  *delayed.Service       // delayed.go; nil when delayed events are off

	clientLn net.Listener
	fedLn    net.Listener
	client   *http.Server
	fed      *http.Server
	// certs hands out the federation certificate (certs.go); nil without a federation listener.
	certs *hearthtls.Manager
}

// New builds the appliance from a validated configuration and binds its listeners, so that
// the addresses are known (and ports taken) before Run.
func New(cfg config.Config, log *slog.Logger) (*Appliance, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Appliance{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			a.closeAll()
		}
	}()
	if err := a.openDomain(); err != nil {
		return nil, err
	}
	if err := a.buildHTTP(); err != nil {
		return nil, err
	}
	if err := a.openDevices(); err != nil { // devices.go: needs the client address
		return nil, err
	}
	ok = true
	return a, nil
}

// openDomain opens the store and builds the Matrix services.
func (a *Appliance) openDomain() error {
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", a.cfg.DataDir, err)
	}
	st, err := store.Open(filepath.Join(a.cfg.DataDir, "store"), store.Options{Logger: a.log})
	if err != nil {
		return err
	}
	a.st = st
	key, err := loadOrCreateKey(filepath.Join(a.cfg.DataDir, "signing.key"))
	if err != nil {
		return err
	}
	a.bus = bus.New[change.Change]()
	st.Stream().SetSink(func(notes []store.Note) {
		for _, n := range notes {
			if c, ok := n.Value.(change.Change); ok {
				a.bus.Publish(c)
			}
		}
	})
	a.accounts = accounts.New(st, a.cfg.ServerName, a.log)
	a.accounts.SetAccessTokenLifetime(a.cfg.Registration.AccessTokenLifetime)
	signer := events.Signer{ServerName: a.cfg.ServerName, KeyID: key.ID, Key: key.Priv}
	a.rooms = rooms.New(st, signer, a.accounts, a.log)
	if err := a.rooms.SetDefaultVersion(id.RoomVersion(a.cfg.DefaultRoomVersion)); err != nil {
		return fmt.Errorf("config default_room_version: %w", err)
	}
	if err := a.rooms.BackfillRelations(); err != nil { // once per store: events older than the index
		return err
	}
	a.push = push.New(st, a.accounts, a.cfg.ServerName, a.log)
	a.push.LegacyMentions = a.cfg.Push.LegacyMentionRules
	a.push.Watch(a.bus) // before sync subscribes: a woken /sync finds the change queued for counting
	a.sync, err = sync.New(st, a.rooms, a.accounts, a.bus, a.log)
	if err != nil {
		return err
	}
	a.sync.AddContributor(pushsync.New(a.push))
	a.sync.SetUnreadCounter(a.push)
	if a.cfg.Presence {
		a.sync.EnablePresence(a.bus)
	}
	a.keys = keys.New(st, a.cfg.ServerName, a.log)
	a.keys.Watch(a.bus)
	a.sync.AddContributor(keysync.New(a.keys))
	a.search = search.New(st, a.log)
	a.search.Watch(a.bus)
	if err := a.openAppServices(); err != nil { // appservices.go
		return err
	}
	a.media = a.newMedia()
	if err := a.openNotices(); err != nil { // notices.go
		return err
	}
	if err := a.openDelayed(); err != nil { // delayed.go
		return err
	}
	return a.openFederation(key, signer) // federation.go
}

func (a *Appliance) buildHTTP() error {
	a.metrics = newMetrics(a)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(a.metrics.middleware)
	l := a.cfg.Limits
	api := clientapi.New(clientapi.Options{
		ServerName:        a.cfg.ServerName,
		PublicBaseURL:     a.cfg.PublicBaseURL,
		OpenRegistration:  a.cfg.Registration.Open,
		SharedSecret:      a.cfg.Registration.SharedSecret,
		MinPasswordLength: a.cfg.Registration.MinPasswordLength,
		RateLimit:         l.RateLimit,
		PerSecond:         l.PerSecond,
		Burst:             l.Burst,
		MaxBodyBytes:      l.MaxBodyBytes,
		SyncTimeoutMax:    l.SyncTimeoutMax,
		Version:           Version(),
	}, clientapi.Deps{Accounts: a.accounts, Rooms: a.rooms, Sync: a.sync, Ephemeral: a.sync, Keys: a.keys, Presence: a.sync, Search: a.search, Admin: hadmin.New(a.st, a.accounts, a.rooms).WithNotices(a.notices), Media: a.media, Push: a.push, AppServices: a.appsvc, Federation: a.fedsys.core, Delayed: a.delayed, ThreadSubs: threadsubs.New(a.st, a.rooms)}, a.log)
	e.GET("/metrics", echo.WrapHandler(a.metrics.handler()))
	a.registerFederation(e) // federation.go: before the client API's catch-all routes
	api.Register(e)

	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	a.clientLn = ln
	a.client = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	if a.cfg.FederationListen != "" {
		if err := a.openCerts(); err != nil { // certs.go
			return err
		}
		// The plain listener answers ACME HTTP-01 challenges and serves the local CA.
		a.client.Handler = a.certs.HTTPHandler(a.client.Handler)
		fl, err := net.Listen("tcp", a.cfg.FederationListen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", a.cfg.FederationListen, err)
		}
		a.fedLn = tls.NewListener(fl, a.certs.TLSConfig())
		// The TLS port serves the same router: the server-server API is mounted on it, and
		// clients that reach the federation port still get answers.
		a.fed = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	}
	return nil
}

// ClientAddr is the bound client-server API address.
func (a *Appliance) ClientAddr() string { return a.clientLn.Addr().String() }

// Run serves until ctx is cancelled, then shuts down in order: stop accepting, finish
// requests (long-polls are woken), close the store.
func (a *Appliance) Run(ctx context.Context) error {
	defer a.closeAll()
	ctl, err := control.Serve(ctx, control.SocketPath(a.cfg.DataDir), &admin{a: a}, a.log)
	if err != nil {
		return err
	}
	defer ctl.Close()
	stopFed, err := a.startFederation() // federation.go: stopped after the listeners, before the store
	if err != nil {
		return err
	}
	defer stopFed()
	stopRemoteMedia, err := a.startRemoteMedia() // media_remote.go: sweeper stopped before the store closes
	if err != nil {
		return err
	}
	defer stopRemoteMedia()
	a.startDelayed() // delayed.go: stopped in closeAll, before the store closes
	errc := make(chan error, 2)
	go func() { errc <- a.client.Serve(a.clientLn) }()
	if a.fed != nil {
		go func() { errc <- a.fed.Serve(a.fedLn) }()
	}
	defer a.startDevices(ctx)() // devices.go: stopped (by ctx) and waited for before the store closes
	a.log.Info("hearth serving", "server_name", a.cfg.ServerName, "client", a.ClientAddr(), "federation", a.cfg.FederationListen, "version", Version())
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
	}
	a.sync.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = a.client.Shutdown(sctx)
	if a.fed != nil {
		_ = a.fed.Shutdown(sctx)
	}
	return nil
}

func (a *Appliance) closeAll() {
	if a.clientLn != nil {
		_ = a.clientLn.Close()
	}
	if a.fedLn != nil {
		_ = a.fedLn.Close()
	}
	if a.keys != nil {
		a.keys.Close() // its clean-up worker writes the store
	}
	if a.search != nil {
		a.search.Close() // its indexer writes the store
	}
	if a.appsvc != nil {
		a.appsvc.Close() // its workers write the store
	}
	if a.delayed != nil {
		a.delayed.Close() // its timers send events
	}
	if a.push != nil {
		a.push.Close() // its evaluator writes the store
	}
	if a.devices != nil && a.devices.bridge == nil {
		_ = a.devices.ln.Close() // built but never run (New failed later, or offline use)
	}
	if a.certs != nil {
		_ = a.certs.Close() // its ACME renewals write the store
	}
	if a.st != nil {
		if err := a.st.Close(); err != nil {
			a.log.Error("close store", "err", err)
		}
		a.st = nil
	}
}

// OpenOffline opens the store directly for administration while no server runs.
func OpenOffline(cfg config.Config, log *slog.Logger) (control.Admin, func() error, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The device bridge runs only inside the server: offline nobody would take its transactions.
	cfg.Devices.Enabled = false
	a := &Appliance{cfg: cfg, log: log}
	if err := a.openDomain(); err != nil {
		a.closeAll()
		return nil, nil, err
	}
	return &admin{a: a}, func() error { a.closeAll(); return nil }, nil
}
