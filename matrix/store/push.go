package store

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Records and accessors of matrix/push: per-user push rules, unread counts, the notification
// list and pushers. Rules and pushers are JSON whose shape belongs to matrix/push.

// PushCountRecord is a user's unread counts in one room: notifying (and highlighting) events
// after Read, the stream position of the event the user's read receipt points at.
type PushCountRecord struct {
	Notification int    `json:"n,omitempty"`
	Highlight    int    `json:"h,omitempty"`
	Read         uint64 `json:"r,omitempty"`
}

// NotificationRecord is one entry of a user's notification list; the event is the one at the
// position in the key.
type NotificationRecord struct {
	Room      uint64          `json:"r"`
	RoomID    string          `json:"ri"`
	Actions   json.RawMessage `json:"a"`
	Highlight bool            `json:"h,omitempty"`
	TS        int64           `json:"ts"`
	// Thread is the root of the thread the event belongs to ("" for the main timeline).
	Thread string `json:"th,omitempty"`
}

// PushRules returns a user's stored rules, or nil when the user never changed any.
func (t *Txn) PushRules(user string) (json.RawMessage, error) {
	b, err := t.get(pushRulesKey(user))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return b, err
}

// PutPushRules stores a user's rules.
func (t *Txn) PutPushRules(user string, b json.RawMessage) error {
	return t.set(pushRulesKey(user), b)
}

// PushCount loads a user's counts in a room (zero when absent).
func (t *Txn) PushCount(user string, room uint64) (PushCountRecord, error) {
	r, err := getJSON[PushCountRecord](t, pushCountKey(user, room))
	if errors.Is(err, ErrNotFound) {
		return PushCountRecord{}, nil
	}
	return r, err
}

// PutPushCount stores a user's counts in a room.
func (t *Txn) PutPushCount(user string, room uint64, r PushCountRecord) error {
	return t.setJSON(pushCountKey(user, room), r)
}

// PushCounts calls fn with every room's counts of a user.
func (t *Txn) PushCounts(user string, fn func(room uint64, r PushCountRecord) (bool, error)) error {
	p := pushCountPrefix(user)
	return t.scan(p, nil, false, true, func(k, v []byte) (bool, error) {
		r, err := getJSONBytes[PushCountRecord](v)
		if err != nil {
			return false, err
		}
		return fn(U64(k[len(p):]), r)
	})
}

// PutNotification appends to a user's notification list and drops the oldest entries beyond
// keep.
func (t *Txn) PutNotification(user string, pos uint64, r *NotificationRecord, keep int) error {
	if err := t.setJSON(pushNotifKey(user, pos), r); err != nil {
		return err
	}
	n := 0
	var dead [][]byte
	err := t.scan(pushNotifPrefix(user), nil, true, false, func(k, _ []byte) (bool, error) {
		n++
		if n > keep {
			dead = append(dead, k)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range dead {
		if err := t.del(k); err != nil {
			return err
		}
	}
	return nil
}

// Notifications calls fn with a user's notifications, newest first, starting below before
// (0: from the newest).
func (t *Txn) Notifications(user string, before uint64, fn func(pos uint64, r *NotificationRecord) (bool, error)) error {
	p := pushNotifPrefix(user)
	var start []byte
	if before > 0 {
		start = pushNotifKey(user, before-1)
	}
	return t.scan(p, start, true, true, func(k, v []byte) (bool, error) {
		r, err := getJSONBytes[NotificationRecord](v)
		if err != nil {
			return false, err
		}
		return fn(U64(k[len(p):]), &r)
	})
}

// PutPusher stores a pusher.
func (t *Txn) PutPusher(user, appID, pushkey string, b json.RawMessage) error {
	return t.set(pusherKey(user, appID, pushkey), b)
}

// DeletePusher removes a pusher (no error when absent).
func (t *Txn) DeletePusher(user, appID, pushkey string) error {
	return t.del(pusherKey(user, appID, pushkey))
}

// Pushers calls fn with a user's pushers ("" = every user's).
func (t *Txn) Pushers(user string, fn func(user string, b json.RawMessage) (bool, error)) error {
	p := []byte{pPusher}
	if user != "" {
		p = pusherPrefix(user)
	}
	return t.scan(p, nil, false, true, func(k, v []byte) (bool, error) {
		u, _, _ := bytes.Cut(k[1:], []byte{0})
		return fn(string(u), v)
	})
}
