package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/filter"
	"github.com/hearth-home/hearth/matrix/ignore"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// PutAccountData stores global (room 0) or per-room account data.
func (s *Service) PutAccountData(ctx context.Context, user id.UserID, room uint64, roomID, typ string, content json.RawMessage) error {
	if typ == "m.fully_read" || typ == "m.push_rules" {
		return merr.BadJSON("%s is managed by the server through its own API", typ)
	}
	if typ == ignore.EventType && room == 0 {
		if err := ignore.Validate(user, content); err != nil {
			return err
		}
	}
	return s.putAccountData(user, room, roomID, typ, content)
}

func (s *Service) putAccountData(user id.UserID, room uint64, roomID, typ string, content json.RawMessage) error {
	return s.st.Update(func(txn *store.Txn) error {
		pos, err := txn.PutAccountData(user.String(), room, typ, content)
		if err != nil {
			return err
		}
		txn.Notify(pos, change.Change{Pos: pos, Kind: change.AccountData, User: user.String(), Room: room, RoomID: roomID, EventType: typ})
		return nil
	})
}

// PutServerAccountData stores types the server manages (m.fully_read, m.push_rules).
func (s *Service) PutServerAccountData(ctx context.Context, user id.UserID, room uint64, roomID, typ string, content json.RawMessage) error {
	return s.putAccountData(user, room, roomID, typ, content)
}

// AccountData loads one item (M_NOT_FOUND when absent).
func (s *Service) AccountData(ctx context.Context, user id.UserID, room uint64, typ string) (json.RawMessage, error) {
	var rec store.AccountDataRecord
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		rec, err = txn.AccountData(user.String(), room, typ)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && store.AccountDataDeleted(rec.Content)) {
		return nil, merr.NotFound("account data not found")
	}
	return rec.Content, err
}

// DeleteAccountData removes an item (MSC3391): it is stored as an empty object, which an
// incremental sync passes on so clients drop it, and which reads as absent everywhere else.
// Deleting what is absent does nothing.
func (s *Service) DeleteAccountData(ctx context.Context, user id.UserID, room uint64, roomID, typ string) error {
	if typ == "m.fully_read" || typ == "m.push_rules" {
		return merr.BadJSON("%s is managed by the server through its own API", typ)
	}
	return s.st.Update(func(txn *store.Txn) error {
		return deleteAccountData(txn, user, room, roomID, typ)
	})
}

func deleteAccountData(txn *store.Txn, user id.UserID, room uint64, roomID, typ string) error {
	rec, err := txn.AccountData(user.String(), room, typ)
	if errors.Is(err, store.ErrNotFound) || (err == nil && store.AccountDataDeleted(rec.Content)) {
		return nil
	}
	if err != nil {
		return err
	}
	pos, err := txn.PutAccountData(user.String(), room, typ, []byte("{}"))
	if err != nil {
		return err
	}
	txn.Notify(pos, change.Change{Pos: pos, Kind: change.AccountData, User: user.String(), Room: room, RoomID: roomID, EventType: typ})
	return nil
}

// localNotificationSettingsPrefix names a device's notification settings kept in account
// data (MSC3890); they go when the device goes.
const localNotificationSettingsPrefix = "org.matrix.msc3890.local_notification_settings."

// PutFilter stores a filter and returns its ID.
func (s *Service) PutFilter(ctx context.Context, user id.UserID, body []byte) (string, error) {
	if _, err := filter.Parse(body); err != nil {
		return "", err
	}
	fid := strconv.FormatInt(s.now().UnixNano(), 36)
	return fid, s.st.Update(func(txn *store.Txn) error {
		return txn.PutFilter(user.String(), fid, body)
	})
}

// Filter loads a stored filter.
func (s *Service) Filter(ctx context.Context, user id.UserID, fid string) ([]byte, error) {
	var b []byte
	err := s.st.View(func(txn *store.Txn) error {
		var err error
		b, err = txn.Filter(user.String(), fid)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("filter not found")
	}
	return b, err
}
