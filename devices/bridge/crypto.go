package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/crypto/olm"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/store"
)

// CryptoOptions give the bot a device of its own for encrypted rooms. Transactions carry no
// to-device messages or device lists here (MSC2409/MSC3202 are not implemented by the
// homeserver), so the device receives them the way any client does: a /sync that asks for no
// room data. Room events still arrive by transaction.
type CryptoOptions struct {
	DeviceID    id.DeviceID
	AccessToken string
	// PickleKey encrypts the pickled Olm state at rest (the store is already private to the
	// appliance; this keeps it from being usable if copied out alone).
	PickleKey []byte
}

// cryptoHelper holds the bot's OlmMachine and its persisted store.
type cryptoHelper struct {
	b     *Bridge
	cli   *mautrix.Client
	mach  *crypto.OlmMachine
	store *badgerCryptoStore
	ready chan struct{} // closed after the first /sync: keys are uploaded and to-device drained
}

func newCryptoHelper(ctx context.Context, b *Bridge, opt CryptoOptions) (*cryptoHelper, error) {
	cli, err := mautrix.NewClient(b.opt.HomeserverURL, b.BotUserID(), opt.AccessToken)
	if err != nil {
		return nil, err
	}
	cli.DeviceID = opt.DeviceID
	cli.Log = zerolog.Nop()
	cs, err := loadCryptoStore(b.opt.Store, opt.PickleKey)
	if err != nil {
		return nil, err
	}
	nop := zerolog.Nop()
	mach := crypto.NewOlmMachine(cli, &nop, cs, b.ss)
	mach.AllowKeyShare = func(context.Context, *id.Device, event.RequestedKeyInfo) *crypto.KeyShareRejection {
		return &crypto.KeyShareRejectNoResponse // the bot never forwards room keys
	}
	if err := mach.Load(ctx); err != nil {
		return nil, fmt.Errorf("load olm account: %w", err)
	}
	if !mach.GetAccount().Shared {
		if err := mach.ShareKeys(ctx, -1); err != nil {
			return nil, fmt.Errorf("upload device keys: %w", err)
		}
	}
	return &cryptoHelper{b: b, cli: cli, mach: mach, store: cs, ready: make(chan struct{})}, nil
}

// syncFilter asks /sync for to-device messages, device lists and key counts only.
const syncFilter = `{"room":{"rooms":[]},"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]}}`

func (c *cryptoHelper) run(ctx context.Context) {
	since, _ := c.store.syncToken()
	backoff := time.Second
	for ctx.Err() == nil {
		resp, err := c.cli.SyncRequest(ctx, 30000, since, syncFilter, false, event.PresenceOffline)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.b.log.Warn("device bridge: crypto sync", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
		c.mach.ProcessSyncResponse(ctx, resp, since)
		since = resp.NextBatch
		if err := c.store.setSyncToken(since); err != nil {
			c.b.log.Warn("device bridge: save sync token", "err", err)
		}
		select {
		case <-c.ready:
		default:
			close(c.ready)
		}
	}
}

// decrypt decrypts a room event, waiting briefly for its room key when the to-device message
// that carries it has not been synced yet (the sender sends it just before the event).
func (c *cryptoHelper) decrypt(ctx context.Context, evt *event.Event) (*event.Event, error) {
	dec, err := c.mach.DecryptMegolmEvent(ctx, evt)
	if errors.Is(err, crypto.ErrNoSessionFound) {
		content := evt.Content.AsEncrypted()
		if c.mach.WaitForSession(ctx, evt.RoomID, content.SenderKey, content.SessionID, 10*time.Second) {
			dec, err = c.mach.DecryptMegolmEvent(ctx, evt)
		}
	}
	if err != nil {
		return nil, err
	}
	return dec, nil
}

// send encrypts content for the room's joined members and sends it as the bot.
func (c *cryptoHelper) send(ctx context.Context, room id.RoomID, typ event.Type, content any) (id.EventID, error) {
	enc, err := c.mach.EncryptMegolmEvent(ctx, room, typ, content)
	if crypto.IsShareError(err) {
		members, merr := c.b.client().JoinedMembers(ctx, room)
		if merr != nil {
			return "", fmt.Errorf("members of %s: %w", room, merr)
		}
		users := make([]id.UserID, 0, len(members.Joined))
		for u := range members.Joined {
			users = append(users, u)
		}
		if err := c.mach.ShareGroupSession(ctx, room, users); err != nil {
			return "", fmt.Errorf("share room key: %w", err)
		}
		enc, err = c.mach.EncryptMegolmEvent(ctx, room, typ, content)
	}
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	resp, err := c.b.client().SendMessageEvent(ctx, room, event.EventEncrypted, enc)
	if err != nil {
		return "", err
	}
	return resp.EventID, nil
}

// badgerCryptoStore is mautrix's in-memory crypto store with the records that must survive a
// restart written through to Badger: the Olm account (identity keys), Olm sessions (so users'
// devices keep talking to ours) and inbound group sessions (so earlier room keys still
// decrypt). Outbound group sessions are not kept: after a restart the bot shares a new one,
// which every client accepts. Device lists are refetched.
type badgerCryptoStore struct {
	*crypto.MemoryStore
	st  *store.Store
	key []byte
	mu  sync.Mutex
}

// Record names under store.DeviceCrypto.
const (
	crAccount = "account"
	crSync    = "sync"
	crOlm     = "olm|"  // + sender key + "|" + session ID
	crGroup   = "igs|"  // + room ID + "|" + session ID
	crIndex   = "index" // JSON list of the olm/igs record names, for loading
)

type savedAccount struct {
	Pickle []byte `json:"p"`
	Shared bool   `json:"s"`
}

type savedOlm struct {
	SenderKey id.SenderKey `json:"k"`
	Pickle    []byte       `json:"p"`
	Created   time.Time    `json:"c"`
}

type savedGroup struct {
	Pickle     []byte        `json:"p"`
	SigningKey id.Ed25519    `json:"sk"`
	SenderKey  id.Curve25519 `json:"k"`
	RoomID     id.RoomID     `json:"r"`
	Chains     []string      `json:"f,omitempty"`
	ReceivedAt time.Time     `json:"t"`
}

func loadCryptoStore(st *store.Store, key []byte) (*badgerCryptoStore, error) {
	if len(key) == 0 {
		key = []byte("hearth-device-bridge")
	}
	cs := &badgerCryptoStore{MemoryStore: crypto.NewMemoryStore(nil), st: st, key: key}
	err := st.View(func(txn *store.Txn) error {
		if raw, err := txn.DeviceCrypto(crAccount); err == nil {
			var sa savedAccount
			if err := json.Unmarshal(raw, &sa); err != nil {
				return err
			}
			acc, err := olm.AccountFromPickled(sa.Pickle, key)
			if err != nil {
				return fmt.Errorf("unpickle account: %w", err)
			}
			cs.MemoryStore.Account = &crypto.OlmAccount{Internal: acc, Shared: sa.Shared}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		names, err := readIndex(txn)
		if err != nil {
			return err
		}
		for _, n := range names {
			raw, err := txn.DeviceCrypto(n)
			if err != nil {
				continue // an index entry whose record was never written
			}
			if err := cs.loadRecord(n, raw); err != nil {
				return fmt.Errorf("crypto record %s: %w", n, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load crypto store: %w", err)
	}
	return cs, nil
}

func (cs *badgerCryptoStore) loadRecord(name string, raw []byte) error {
	switch {
	case len(name) > len(crOlm) && name[:len(crOlm)] == crOlm:
		var so savedOlm
		if err := json.Unmarshal(raw, &so); err != nil {
			return err
		}
		sess, err := olm.SessionFromPickled(so.Pickle, cs.key)
		if err != nil {
			return err
		}
		s := &crypto.OlmSession{Internal: sess}
		s.CreationTime = so.Created
		cs.MemoryStore.Sessions[so.SenderKey] = append(cs.MemoryStore.Sessions[so.SenderKey], s)
	case len(name) > len(crGroup) && name[:len(crGroup)] == crGroup:
		var sg savedGroup
		if err := json.Unmarshal(raw, &sg); err != nil {
			return err
		}
		in := olm.NewBlankInboundGroupSession()
		if err := in.Unpickle(sg.Pickle, cs.key); err != nil {
			return err
		}
		igs := &crypto.InboundGroupSession{Internal: in, SigningKey: sg.SigningKey, SenderKey: sg.SenderKey,
			RoomID: sg.RoomID, ForwardingChains: sg.Chains, ReceivedAt: sg.ReceivedAt}
		return cs.MemoryStore.PutGroupSession(context.Background(), igs)
	}
	return nil
}

func readIndex(txn *store.Txn) ([]string, error) {
	raw, err := txn.DeviceCrypto(crIndex)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	return names, json.Unmarshal(raw, &names)
}

// put writes one record and adds it to the index.
func (cs *badgerCryptoStore) put(name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.st.Update(func(txn *store.Txn) error {
		if err := txn.SetDeviceCrypto(name, raw); err != nil {
			return err
		}
		if name == crAccount || name == crSync {
			return nil
		}
		names, err := readIndex(txn)
		if err != nil {
			return err
		}
		for _, n := range names {
			if n == name {
				return nil
			}
		}
		idx, err := json.Marshal(append(names, name))
		if err != nil {
			return err
		}
		return txn.SetDeviceCrypto(crIndex, idx)
	})
}

func (cs *badgerCryptoStore) syncToken() (string, error) {
	var tok string
	err := cs.st.View(func(txn *store.Txn) error {
		raw, err := txn.DeviceCrypto(crSync)
		if err == nil {
			tok = string(raw)
		}
		return nil
	})
	return tok, err
}

func (cs *badgerCryptoStore) setSyncToken(tok string) error {
	return cs.st.Update(func(txn *store.Txn) error { return txn.SetDeviceCrypto(crSync, []byte(tok)) })
}

// PutAccount implements crypto.Store.
func (cs *badgerCryptoStore) PutAccount(ctx context.Context, acc *crypto.OlmAccount) error {
	if err := cs.MemoryStore.PutAccount(ctx, acc); err != nil {
		return err
	}
	p, err := acc.Internal.Pickle(cs.key)
	if err != nil {
		return err
	}
	return cs.put(crAccount, savedAccount{Pickle: p, Shared: acc.Shared})
}

func (cs *badgerCryptoStore) saveOlm(key id.SenderKey, s *crypto.OlmSession) error {
	p, err := s.Internal.Pickle(cs.key)
	if err != nil {
		return err
	}
	return cs.put(crOlm+string(key)+"|"+string(s.ID()), savedOlm{SenderKey: key, Pickle: p, Created: s.CreationTime})
}

// AddSession implements crypto.Store.
func (cs *badgerCryptoStore) AddSession(ctx context.Context, key id.SenderKey, s *crypto.OlmSession) error {
	if err := cs.MemoryStore.AddSession(ctx, key, s); err != nil {
		return err
	}
	return cs.saveOlm(key, s)
}

// UpdateSession implements crypto.Store: a session's ratchet moves with every message.
func (cs *badgerCryptoStore) UpdateSession(ctx context.Context, key id.SenderKey, s *crypto.OlmSession) error {
	if err := cs.MemoryStore.UpdateSession(ctx, key, s); err != nil {
		return err
	}
	return cs.saveOlm(key, s)
}

// DeleteSession implements crypto.Store: a session mautrix gave up on must not come back at
// the next start.
func (cs *badgerCryptoStore) DeleteSession(ctx context.Context, key id.SenderKey, s *crypto.OlmSession) error {
	if err := cs.MemoryStore.DeleteSession(ctx, key, s); err != nil {
		return err
	}
	name := crOlm + string(key) + "|" + string(s.ID())
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.st.Update(func(txn *store.Txn) error {
		names, err := readIndex(txn)
		if err != nil {
			return err
		}
		names = slices.DeleteFunc(names, func(n string) bool { return n == name })
		idx, err := json.Marshal(names)
		if err != nil {
			return err
		}
		if err := txn.SetDeviceCrypto(crIndex, idx); err != nil {
			return err
		}
		return txn.DeleteDeviceCrypto(name)
	})
}

// PutGroupSession implements crypto.Store.
func (cs *badgerCryptoStore) PutGroupSession(ctx context.Context, igs *crypto.InboundGroupSession) error {
	if err := cs.MemoryStore.PutGroupSession(ctx, igs); err != nil {
		return err
	}
	p, err := igs.Internal.Pickle(cs.key)
	if err != nil {
		return err
	}
	return cs.put(crGroup+string(igs.RoomID)+"|"+string(igs.ID()), savedGroup{Pickle: p, SigningKey: igs.SigningKey,
		SenderKey: igs.SenderKey, RoomID: igs.RoomID, Chains: igs.ForwardingChains, ReceivedAt: igs.ReceivedAt})
}
