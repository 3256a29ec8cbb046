package keys

import (
	"errors"

	"github.com/hearth-home/hearth/appliance/bus"
	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/store"
)

// Watch subscribes to the bus and removes the E2EE records of deleted devices: when a user's
// devices change, every device with identity keys but no device record is cleaned up, and
// the user's device list is marked changed so that other users stop encrypting to it.
// Membership events also pass here, to keep the remote device-list cache to the users this
// server still shares a room with (remote_track.go). It runs
// until Close. Missed changes (a lagging queue) only delay clean-up: queries and claims
// already ignore devices that no longer exist.
func (s *Service) Watch(b *bus.Bus[change.Change]) {
	sub := b.SubscribeQueue(256)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer b.Unsubscribe(sub)
		for {
			select {
			case <-s.stop:
				return
			case c := <-sub.C():
				if c.Kind == change.Event {
					if err := s.forgetOnMembership(c); err != nil { // remote_track.go
						s.log.Warn("forget cached remote device lists", "room_id", c.RoomID, "err", err)
					}
					continue
				}
				if c.Kind != change.Devices || c.User == "" || !s.isLocal(c.User) {
					continue
				}
				if err := s.cleanupDevices(c.User); err != nil {
					s.log.Warn("clean up keys of deleted devices", "user", c.User, "err", err)
				}
			}
		}
	}()
}

// cleanupDevices removes the E2EE records of a user's deleted devices.
func (s *Service) cleanupDevices(user string) error {
	return s.st.Update(func(txn *store.Txn) error {
		var gone []string
		err := txn.UserDeviceKeys(user, func(dev string, _ *store.DeviceKeysRecord) (bool, error) {
			_, err := txn.Device(user, dev)
			if errors.Is(err, store.ErrNotFound) {
				gone = append(gone, dev)
				return true, nil
			}
			return err == nil, err
		})
		if err != nil || len(gone) == 0 {
			return err
		}
		for _, dev := range gone {
			if _, err := txn.DeleteDeviceE2EE(user, dev); err != nil {
				return err
			}
		}
		pos, err := txn.MarkDeviceListChanged(user)
		if err != nil {
			return err
		}
		txn.Notify(pos, change.Change{Pos: pos, Kind: change.DeviceKeys, User: user})
		return nil
	})
}
