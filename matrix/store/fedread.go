package store

import "errors"

// DeviceListPos returns the stream position of user's newest device-list change, 0 if their
// device list never changed. Federation uses it as the device list's stream_id, which must
// grow with every change the m.device_list_update EDUs announce.
func (t *Txn) DeviceListPos(user string) (uint64, error) {
	b, err := t.get(devListUserKey(user))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return U64(b), nil
}
