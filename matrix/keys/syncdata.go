package keys

import (
	"github.com/hearth-home/hearth/matrix/store"
)

// Per-device sync sections. These read inside the caller's (read-only) transaction, so
// /sync and sliding sync can share them; AckToDevice is the one write and runs on its own.

// ToDeviceEvents lists the messages queued for a device in (since, upto], oldest first.
func (s *Service) ToDeviceEvents(txn *store.Txn, user, device string, since, upto uint64) ([]ToDeviceEvent, error) {
	msgs, err := txn.ToDevice(user, device, since, upto, 0)
	if err != nil {
		return nil, err
	}
	out := make([]ToDeviceEvent, len(msgs))
	for i, m := range msgs {
		out[i] = ToDeviceEvent{Sender: m.Sender, Type: m.Type, Content: m.Content}
	}
	return out, nil
}

// PendingAck reports whether a device has messages at or below upto: ones a client
// acknowledged by presenting a since token >= upto.
func (s *Service) PendingAck(txn *store.Txn, user, device string, upto uint64) (bool, error) {
	return txn.HasToDeviceUpTo(user, device, upto)
}

// AckToDevice deletes a device's messages at positions <= upto: the client presented a token
// at upto, so it has received everything up to there. Its own durable transaction.
func (s *Service) AckToDevice(user, device string, upto uint64) error {
	for {
		n := 0
		err := s.st.Update(func(txn *store.Txn) error {
			var err error
			n, err = txn.DeleteToDeviceUpTo(user, device, upto, MaxInbox)
			return err
		})
		if err != nil || n < MaxInbox {
			return err
		}
	}
}

// OneTimeKeyCounts is device_one_time_keys_count: always with signed_curve25519.
func (s *Service) OneTimeKeyCounts(txn *store.Txn, user, device string) (map[string]int, error) {
	c, err := txn.OTKCounts(user, device)
	if err != nil {
		return nil, err
	}
	return countsWithDefault(c.Counts), nil
}

// UnusedFallbackKeyTypes is device_unused_fallback_key_types: never nil, so it is always sent.
func (s *Service) UnusedFallbackKeyTypes(txn *store.Txn, user, device string) ([]string, error) {
	fbs, err := txn.FallbackKeys(user, device)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, f := range fbs {
		if !f.Used {
			out = append(out, f.Algorithm)
		}
	}
	return out, nil
}
