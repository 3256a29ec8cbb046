package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hearth-home/hearth/matrix/store"
)

// What the federation sender reads to announce local users' devices to other servers
// (m.device_list_update and m.signing_key_update): the same view a remote server gets from
// /user/devices, so an update and a later resync agree.

// AnnouncedDevice returns a local device's display name and its signed keys with the owner's
// separately uploaded signatures (nil when none were uploaded); found is false once the
// device is deleted.
func (s *Service) AnnouncedDevice(ctx context.Context, user, device string) (displayName string, keys json.RawMessage, found bool, err error) {
	err = s.st.View(func(txn *store.Txn) error {
		d, err := txn.Device(user, device)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found, displayName = true, d.DisplayName
		devs, err := queryDevices(txn, user, []string{device})
		if err != nil {
			return err
		}
		raw, ok := devs[device]
		if !ok {
			return nil
		}
		var k map[string]json.RawMessage
		if err := json.Unmarshal(raw, &k); err != nil {
			return fmt.Errorf("decode device keys of %s %s: %w", user, device, err)
		}
		delete(k, "unsigned") // the display name travels in its own field
		keys, err = json.Marshal(k)
		return err
	})
	return displayName, keys, found, err
}

// AnnouncedDeviceIDs lists a local user's current devices.
func (s *Service) AnnouncedDeviceIDs(ctx context.Context, user string) ([]string, error) {
	var out []string
	err := s.st.View(func(txn *store.Txn) error {
		ds, err := txn.Devices(user)
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return err
	})
	return out, err
}

// AnnouncedCrossSigningKeys returns a local user's master and self-signing keys as other
// servers see them (nil when absent).
func (s *Service) AnnouncedCrossSigningKeys(ctx context.Context, user string) (master, selfSigning json.RawMessage, err error) {
	err = s.st.View(func(txn *store.Txn) error {
		var err error
		if master, err = crossSigningKey(txn, user, UsageMaster, ""); err != nil {
			return err
		}
		selfSigning, err = crossSigningKey(txn, user, UsageSelfSigning, "")
		return err
	})
	return master, selfSigning, err
}
