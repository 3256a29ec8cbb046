package appliance

import (
	"context"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/events/stateres"
	"github.com/hearth-home/hearth/matrix/federation"
	"github.com/hearth-home/hearth/matrix/federation/fedapi"
	"github.com/hearth-home/hearth/matrix/federation/keyring"
	"github.com/hearth-home/hearth/matrix/federation/sender"
	"github.com/hearth-home/hearth/matrix/rooms"
	hearthtls "github.com/hearth-home/hearth/tls"
)

// fedSys is the federation side of the appliance: keyring, outbound client and queues, the
// federation core and its handlers.
type fedSys struct {
	keys   *keyring.Keyring
	client *mfed.Client
	sender *sender.Sender
	core   *federation.Service
	stop   func()
}

// openFederation builds the federation services. Outbound federation trusts the system roots
// plus the configured extra CAs (and the Complement CA when one signs our certificate, since
// the other servers of such a deployment are signed by it too).
func (a *Appliance) openFederation(key *mfed.SigningKey, signer events.Signer) error {
	var cas []string
	if a.cfg.TLSCA != "" {
		cas = append(cas, a.cfg.TLSCA)
	}
	cas = append(cas, a.cfg.TLSExtraCA...)
	roots, err := hearthtls.ExtraRoots(cas)
	if err != nil {
		return fmt.Errorf("federation: %w", err)
	}
	netPolicy := keyring.Net{Roots: roots}
	resolver := keyring.NewResolver(keyring.ResolverConfig{Store: a.st, Net: netPolicy, Logger: a.log})
	client, err := keyring.NewClient(keyring.ClientConfig{ServerName: a.cfg.ServerName, Key: key, Resolver: resolver, Net: netPolicy})
	if err != nil {
		return fmt.Errorf("federation client: %w", err)
	}
	kr, err := keyring.New(keyring.Config{ServerName: a.cfg.ServerName, Key: key, Store: a.st, Client: client, Notaries: a.cfg.Federation.TrustedKeyServers, Logger: a.log})
	if err != nil {
		return err
	}
	snd, err := sender.New(sender.Options{ServerName: a.cfg.ServerName, Store: a.st, Transport: client, Logger: a.log, BackoffBase: a.cfg.Federation.RetryBase, BackoffMax: a.cfg.Federation.RetryMax})
	if err != nil {
		return err
	}
	a.rooms.SetResolver(resolveState(kr))
	core := federation.New(federation.Config{Rooms: a.rooms, Keys: kr, Client: client, Queue: queue{snd}, Signer: signer, Log: a.log})
	core.SetEDUHandlers(a.sync, a.keys, snd)
	a.fedsys = &fedSys{keys: kr, client: client, sender: snd, core: core}
	return nil
}

// startFederation starts delivery and the fan-out of local events; the returned func stops them.
func (a *Appliance) startFederation() (func(), error) {
	if a.fedsys == nil {
		return func() {}, nil
	}
	if err := a.fedsys.sender.Start(); err != nil {
		return nil, fmt.Errorf("federation sender: %w", err)
	}
	stopWatch := a.watchFederation() // federation_edu.go: event fan-out, EDUs, remote E2EE
	return func() {
		stopWatch()
		_ = a.fedsys.sender.Close()
	}, nil
}

// registerFederation mounts the server-server API and the key server on e.
func (a *Appliance) registerFederation(e *echo.Echo) {
	if a.fedsys == nil {
		return
	}
	if ws := a.cfg.Federation.WellKnownServer; ws != "" {
		e.GET("/.well-known/matrix/server", func(c echo.Context) error {
			c.Response().Header().Set("Cache-Control", "max-age=86400")
			return c.JSON(http.StatusOK, map[string]string{"m.server": ws})
		})
	}
	a.fedsys.keys.Register(e.Group("/_matrix/key"))
	g := e.Group("/_matrix/federation")
	auth := a.fedsys.keys.Middleware()
	fedapi.Register(g, fedapi.Deps{ServerName: a.cfg.ServerName, Version: Version(), Rooms: a.rooms, Accounts: a.accounts, Keys: a.keys, Media: a.media, Auth: auth, Log: a.log})
	fedapi.RegisterCore(g, a.fedsys.core, auth, a.log)
}

// resolveState adapts the state resolution package to the room service's Resolver; the keyring
// answers the signature checks of restricted joins.
func resolveState(kr *keyring.Keyring) rooms.Resolver {
	return func(ctx context.Context, rv id.RoomVersion, sets []rooms.ResolvedState, load func(ids []id.EventID) ([]*pdu.PDU, error)) (rooms.ResolvedState, error) {
		return resolveWith(ctx, rv, sets, load, kr.GetKey(ctx))
	}
}

func resolveWith(ctx context.Context, rv id.RoomVersion, sets []rooms.ResolvedState, load func(ids []id.EventID) ([]*pdu.PDU, error), keys pdu.GetKeyFunc) (rooms.ResolvedState, error) {
	in := make([]stateres.StateMap, len(sets))
	for i, s := range sets {
		m := make(stateres.StateMap, len(s))
		for k, v := range s {
			m[stateres.Key{Type: k.Type, StateKey: k.StateKey}] = v
		}
		in[i] = m
	}
	fetch := func(_ context.Context, ids []id.EventID) ([]*stateres.Event, error) {
		ps, err := load(ids)
		if err != nil {
			return nil, err
		}
		out := make([]*stateres.Event, len(ids))
		for i, p := range ps {
			if p != nil {
				out[i] = &stateres.Event{ID: ids[i], PDU: p, Rejected: p.InternalMeta.Rejected}
			}
		}
		return out, nil
	}
	res, err := stateres.ResolveWith(ctx, rv, in, fetch, stateres.Options{Keys: keys})
	if err != nil {
		return nil, err
	}
	out := make(rooms.ResolvedState, len(res))
	for k, v := range res {
		out[pdu.StateKey{Type: k.Type, StateKey: k.StateKey}] = v
	}
	return out, nil
}

// queue adapts the sender to the core's Queue.
type queue struct{ s *sender.Sender }

func (q queue) QueuePDU(_ context.Context, dests []string, p []byte) error {
	return q.s.Enqueue(dests, [][]byte{p}, nil)
}
