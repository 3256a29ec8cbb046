package keys

import (
	"context"
	"encoding/json"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// ToDeviceEvent is a to-device message as /sync delivers it.
type ToDeviceEvent struct {
	Sender  string          `json:"sender"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
}

// SendToDevice queues messages (user ID -> device ID or "*" -> content) for local devices.
// The transaction ID is scoped to the sending device and the event type, so a retried
// request is queued once. Unknown devices are skipped. Messages for users of other servers go
// to the federation sender once the local part is committed (remote_todevice.go). Each
// device's inbox keeps at most MaxInbox messages, dropping the oldest.
func (s *Service) SendToDevice(ctx context.Context, sender id.UserID, senderDevice, evType, txnID string, messages map[string]map[string]json.RawMessage) error {
	if err := checkIDPart("event type", evType); err != nil {
		return err
	}
	if err := checkIDPart("transaction ID", txnID); err != nil {
		return err
	}
	for _, devs := range messages {
		for _, c := range devs {
			if _, err := object(c); err != nil {
				return merr.BadJSON("every message must be a JSON object")
			}
		}
	}
	var fresh bool
	err := s.st.Update(func(txn *store.Txn) error {
		seen, err := txn.ToDeviceTxnSeen(sender.String(), senderDevice, evType, txnID)
		if err != nil || seen {
			return err
		}
		fresh = true
		pos, err := txn.AllocPos(store.KindDevice)
		if err != nil {
			return err
		}
		for user, devs := range messages {
			if !s.isLocal(user) {
				continue // handed to the federation sender after the commit (remote_todevice.go)
			}
			targets, err := targetDevices(txn, user, devs)
			if err != nil {
				return err
			}
			for dev, content := range targets {
				rec := &store.ToDeviceRecord{Sender: sender.String(), Type: evType, Content: content}
				if err := txn.PutToDevice(user, dev, pos, rec); err != nil {
					return err
				}
				dropped, err := txn.TrimToDevice(user, dev, MaxInbox)
				if err != nil {
					return err
				}
				if dropped > 0 {
					s.log.Warn("to-device inbox full, dropped oldest messages", "user", user, "device", dev, "dropped", dropped)
				}
			}
			switch len(targets) {
			case 0:
			case 1:
				for dev := range targets {
					txn.Notify(pos, change.Change{Pos: pos, Kind: change.ToDevice, User: user, Device: dev})
				}
			default:
				txn.Notify(pos, change.Change{Pos: pos, Kind: change.ToDevice, User: user, Device: "*"})
			}
		}
		return nil
	})
	if err != nil || !fresh {
		return err
	}
	return s.sendRemoteToDevice(sender, senderDevice, evType, txnID, messages)
}

// targetDevices resolves device IDs ("*" = every device) to existing devices; an explicit
// device ID wins over "*" for its content.
func targetDevices(txn *store.Txn, user string, devs map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if all, ok := devs["*"]; ok {
		ds, err := txn.Devices(user)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			out[d.ID] = all
		}
	}
	for dev, c := range devs {
		if dev == "*" {
			continue
		}
		if _, err := txn.Device(user, dev); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		out[dev] = c
	}
	return out, nil
}
