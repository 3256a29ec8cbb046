package store

import (
	"bytes"
	"encoding/json"
)

func getJSONBytes[T any](b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

// PutUser stores a user record.
func (t *Txn) PutUser(u *UserRecord) error { return t.setJSON(userKey(u.Localpart), u) }

// User loads a user by localpart.
func (t *Txn) User(localpart string) (*UserRecord, error) {
	u, err := getJSON[UserRecord](t, userKey(localpart))
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// Users calls fn for every user.
func (t *Txn) Users(fn func(u *UserRecord) (bool, error)) error {
	return t.scan([]byte{pUser}, nil, false, true, func(_, v []byte) (bool, error) {
		u, err := getJSONBytes[UserRecord](v)
		if err != nil {
			return false, err
		}
		return fn(&u)
	})
}

// PutDevice stores a device.
func (t *Txn) PutDevice(user string, d *DeviceRecord) error {
	return t.setJSON(deviceKey(user, d.ID), d)
}

// Device loads one device.
func (t *Txn) Device(user, device string) (*DeviceRecord, error) {
	d, err := getJSON[DeviceRecord](t, deviceKey(user, device))
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// DeleteDevice removes a device record.
func (t *Txn) DeleteDevice(user, device string) error { return t.del(deviceKey(user, device)) }

// Devices lists a user's devices.
func (t *Txn) Devices(user string) ([]*DeviceRecord, error) {
	var out []*DeviceRecord
	err := t.scan(devicePrefix(user), nil, false, true, func(_, v []byte) (bool, error) {
		d, err := getJSONBytes[DeviceRecord](v)
		if err != nil {
			return false, err
		}
		out = append(out, &d)
		return true, nil
	})
	return out, err
}

// PutToken maps an access-token hash to a user and device.
func (t *Txn) PutToken(hash []byte, rec TokenRecord) error { return t.setJSON(tokenKey(hash), rec) }

// Token resolves an access-token hash.
func (t *Txn) Token(hash []byte) (TokenRecord, error) { return getJSON[TokenRecord](t, tokenKey(hash)) }

// DeleteToken removes an access-token mapping.
func (t *Txn) DeleteToken(hash []byte) error { return t.del(tokenKey(hash)) }

// PutAccountData stores an account-data item and logs the change in the user's stream.
func (t *Txn) PutAccountData(user string, room uint64, typ string, content []byte) (uint64, error) {
	k := accountDataKey(user, room, typ)
	if old, err := getJSON[AccountDataRecord](t, k); err == nil {
		if err := t.del(accountDataStreamKey(user, old.Pos)); err != nil {
			return 0, err
		}
	}
	pos, err := t.AllocPos(KindAccountData)
	if err != nil {
		return 0, err
	}
	if err := t.setJSON(k, AccountDataRecord{Pos: pos, Content: content}); err != nil {
		return 0, err
	}
	return pos, t.set(accountDataStreamKey(user, pos), append(be64(room), typ...))
}

// AccountData loads one item.
func (t *Txn) AccountData(user string, room uint64, typ string) (AccountDataRecord, error) {
	return getJSON[AccountDataRecord](t, accountDataKey(user, room, typ))
}

// AccountDataChange is one entry of a user's account-data change stream.
type AccountDataChange struct {
	Pos  uint64
	Room uint64
	Type string
}

// AccountDataDeleted reports whether stored account-data content means "deleted": MSC3391
// stores a deletion as an empty object, so that an incremental sync can tell clients.
func AccountDataDeleted(content []byte) bool {
	if len(content) > 64 {
		return false
	}
	var b bytes.Buffer
	return json.Compact(&b, content) == nil && b.String() == "{}"
}

// AccountDataSince lists the account-data items of a user changed in (since, upto]. From the
// start (since 0, an initial sync) deleted items are left out: there is nothing to forget.
func (t *Txn) AccountDataSince(user string, since, upto uint64) ([]AccountDataChange, error) {
	var out []AccountDataChange
	p := accountDataStreamPrefix(user)
	err := t.scan(p, accountDataStreamKey(user, since+1), false, true, func(k, v []byte) (bool, error) {
		pos := U64(k[len(p):])
		if pos > upto {
			return false, nil
		}
		c := AccountDataChange{Pos: pos, Room: U64(v), Type: string(v[8:])}
		if since == 0 {
			rec, err := t.AccountData(user, c.Room, c.Type)
			if err == nil && AccountDataDeleted(rec.Content) {
				return true, nil
			}
		}
		out = append(out, c)
		return true, nil
	})
	return out, err
}

// PutFilter stores a filter.
func (t *Txn) PutFilter(user, id string, filter []byte) error {
	return t.set(filterKey(user, id), filter)
}

// Filter loads a filter.
func (t *Txn) Filter(user, id string) ([]byte, error) { return t.get(filterKey(user, id)) }

// PutRegToken stores a registration token.
func (t *Txn) PutRegToken(r *RegTokenRecord) error { return t.setJSON(regTokenKey(r.Token), r) }

// RegToken loads a registration token.
func (t *Txn) RegToken(tok string) (*RegTokenRecord, error) {
	r, err := getJSON[RegTokenRecord](t, regTokenKey(tok))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// DeleteRegToken removes a registration token.
func (t *Txn) DeleteRegToken(tok string) error { return t.del(regTokenKey(tok)) }

// RegTokens lists all registration tokens.
func (t *Txn) RegTokens() ([]*RegTokenRecord, error) {
	var out []*RegTokenRecord
	err := t.scan(regTokenPrefix(), nil, false, true, func(_, v []byte) (bool, error) {
		r, err := getJSONBytes[RegTokenRecord](v)
		if err != nil {
			return false, err
		}
		out = append(out, &r)
		return true, nil
	})
	return out, err
}

// PutTxn remembers the event sent for a client transaction ID.
func (t *Txn) PutTxn(user, device, txn, eventID string) error {
	return t.set(txnKey(user, device, txn), []byte(eventID))
}

// TxnEvent returns the event ID recorded for a client transaction ID.
func (t *Txn) TxnEvent(user, device, txn string) (string, error) {
	b, err := t.get(txnKey(user, device, txn))
	return string(b), err
}

// PutReceipt stores a receipt, replacing the user's previous one of the same type and thread.
func (t *Txn) PutReceipt(r *ReceiptRecord) error {
	k := receiptKey(r.RoomNID, r.Type, r.User, r.Thread)
	if old, err := getJSON[ReceiptRecord](t, k); err == nil {
		if err := t.del(receiptStreamKey(r.RoomNID, old.Pos)); err != nil {
			return err
		}
	}
	if err := t.setJSON(k, r); err != nil {
		return err
	}
	return t.set(receiptStreamKey(r.RoomNID, r.Pos), k[9:])
}

// Receipt loads the latest receipt of a user of a type in a thread.
func (t *Txn) Receipt(room uint64, typ, user, thread string) (*ReceiptRecord, error) {
	r, err := getJSON[ReceiptRecord](t, receiptKey(room, typ, user, thread))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// ReceiptsSince lists a room's receipts changed in (since, upto].
func (t *Txn) ReceiptsSince(room, since, upto uint64) ([]*ReceiptRecord, error) {
	var out []*ReceiptRecord
	p := receiptStreamPrefix(room)
	err := t.scan(p, receiptStreamKey(room, since+1), false, true, func(k, v []byte) (bool, error) {
		if U64(k[len(p):]) > upto {
			return false, nil
		}
		r, err := getJSON[ReceiptRecord](t, append(receiptPrefix(room), v...))
		if err == ErrNotFound {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		out = append(out, &r)
		return true, nil
	})
	return out, err
}

// splitNul splits at the first 0x00.
func splitNul(b []byte) (string, []byte) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return string(b), nil
	}
	return string(b[:i]), b[i+1:]
}
