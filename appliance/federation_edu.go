package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/federation/sender"
	"github.com/hearth-home/hearth/matrix/keys"
	"github.com/hearth-home/hearth/matrix/store"
)

// The EDU side of federation: local typing, receipts, presence, device lists, signing keys
// and to-device messages leave as EDUs (the sender's Producer, fed from the bus), remote
// users' keys are asked of their servers (the keys service's remote side), and the EDUs
// about remote users' presence and devices reach the sync and keys services.

// watchFederation starts the fan-out of local events and the EDU producer and connects the
// remote E2EE paths; the returned func stops both. It runs before the listeners serve.
func (a *Appliance) watchFederation() func() {
	fs := a.fedsys
	stopWatch := fs.core.Watch(a.bus)
	po := sender.ProducerOptions{
		ServerName: a.cfg.ServerName,
		Sender:     fs.sender,
		Rooms:      joinedServers{a},
		UserRooms:  joinedRooms{a.st},
		Typing:     a.sync,
		Receipts:   receiptsAt{a.st},
		Devices:    announcedDevices{a.keys},
		Logger:     a.log,
	}
	if a.cfg.Presence {
		po.Presence = presenceOf{a}
	}
	prod, err := sender.NewProducer(po)
	if err != nil {
		// Only a wiring bug gets here (the required options are set above); federation of
		// PDUs still works, so log instead of refusing to start.
		a.log.Error("federation EDU producer not started", "err", err)
		return stopWatch
	}
	a.keys.EnableRemote(keys.RemoteOptions{Federation: fedKeys{fs.client}, ToDevice: prod})
	fs.core.SetRemoteStateHandlers(a.sync, a.keys)
	sub := a.bus.Subscribe(prod.Handle) // Handle never blocks
	prod.Start()
	return func() {
		a.bus.Unsubscribe(sub)
		prod.Close()
		stopWatch()
	}
}

// joinedServers lists the servers in a room for the producer.
type joinedServers struct{ a *Appliance }

func (j joinedServers) JoinedServers(ctx context.Context, roomID string) ([]string, error) {
	return j.a.rooms.JoinedServers(ctx, id.RoomID(roomID))
}

// joinedRooms lists a local user's joined rooms from the membership index.
type joinedRooms struct{ st *store.Store }

func (j joinedRooms) JoinedRooms(ctx context.Context, user string) ([]string, error) {
	var out []string
	err := j.st.View(func(txn *store.Txn) error {
		var nids []uint64
		err := txn.Memberships(user, func(m store.Membership) (bool, error) {
			if m.Membership == "join" {
				nids = append(nids, m.Room)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, nid := range nids {
			r, err := txn.Room(nid)
			if err != nil {
				return fmt.Errorf("room %d: %w", nid, err)
			}
			out = append(out, r.ID)
		}
		return nil
	})
	return out, err
}

// receiptsAt reads the receipt written at a stream position.
type receiptsAt struct{ st *store.Store }

func (r receiptsAt) ReceiptAt(ctx context.Context, roomID string, pos uint64) (string, sender.ReadReceipt, bool, error) {
	var typ string
	var out sender.ReadReceipt
	found := false
	err := r.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID)
		if err != nil {
			return fmt.Errorf("room %s: %w", roomID, err)
		}
		if pos == 0 {
			return nil
		}
		rs, err := txn.ReceiptsSince(nid, pos-1, pos)
		if err != nil {
			return err
		}
		for _, rec := range rs {
			if rec.Pos != pos {
				continue
			}
			typ, found = rec.Type, true
			out = sender.ReadReceipt{RoomID: roomID, UserID: rec.User, EventIDs: []string{rec.EventID}, TS: rec.TS, ThreadID: rec.Thread}
		}
		return nil
	})
	return typ, out, found, err
}

// presenceOf reads the presence table for the producer.
type presenceOf struct{ a *Appliance }

func (p presenceOf) Presence(user string) (sender.PresenceUpdate, bool) {
	st, msg, ago, active, ok := p.a.sync.PresenceOf(user)
	if !ok {
		return sender.PresenceUpdate{}, false
	}
	return sender.PresenceUpdate{UserID: user, Presence: st, StatusMsg: msg, LastActiveAgo: ago, CurrentlyActive: active}, true
}

// announcedDevices reads local devices and keys as other servers see them.
type announcedDevices struct{ k *keys.Service }

func (d announcedDevices) Device(ctx context.Context, user, device string) (string, json.RawMessage, bool, error) {
	return d.k.AnnouncedDevice(ctx, user, device)
}

func (d announcedDevices) DeviceIDs(ctx context.Context, user string) ([]string, error) {
	return d.k.AnnouncedDeviceIDs(ctx, user)
}

func (d announcedDevices) CrossSigningKeys(ctx context.Context, user string) (json.RawMessage, json.RawMessage, error) {
	return d.k.AnnouncedCrossSigningKeys(ctx, user)
}

// fedKeys asks other servers for their users' keys over the federation API.
type fedKeys struct{ c *mfed.Client }

func (f fedKeys) UserDevices(ctx context.Context, server, user string) (*keys.FedDevices, error) {
	var out keys.FedDevices
	if err := f.c.MakeRequest(ctx, server, true, http.MethodGet, mfed.URLPath{"v1", "user", "devices", user}, nil, &out); err != nil {
		return nil, fmt.Errorf("devices of %s from %s: %w", user, server, err)
	}
	return &out, nil
}

func (f fedKeys) QueryKeys(ctx context.Context, server string, users map[string][]string) (*keys.FedQueryResponse, error) {
	req := map[string]any{"device_keys": users}
	var out keys.FedQueryResponse
	if err := f.c.MakeRequest(ctx, server, true, http.MethodPost, mfed.URLPath{"v1", "user", "keys", "query"}, req, &out); err != nil {
		return nil, fmt.Errorf("key query to %s: %w", server, err)
	}
	return &out, nil
}

func (f fedKeys) ClaimKeys(ctx context.Context, server string, claim map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
	req := map[string]any{"one_time_keys": claim}
	var out struct {
		OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
	}
	if err := f.c.MakeRequest(ctx, server, true, http.MethodPost, mfed.URLPath{"v1", "user", "keys", "claim"}, req, &out); err != nil {
		return nil, fmt.Errorf("key claim to %s: %w", server, err)
	}
	return out.OneTimeKeys, nil
}
