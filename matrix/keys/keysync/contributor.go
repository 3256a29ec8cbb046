// Package keysync plugs the E2EE per-device sections into /sync: it implements
// sync.Contributor over the keys service. It lives apart from package keys because
// matrix/sync imports matrix/clientapi, which imports matrix/keys.
package keysync

import (
	"slices"

	"github.com/hearth-home/hearth/matrix/accounts"
	"github.com/hearth-home/hearth/matrix/keys"
	"github.com/hearth-home/hearth/matrix/store"
	"github.com/hearth-home/hearth/matrix/sync"
)

// Contributor fills to_device, device_lists, device_one_time_keys_count and
// device_unused_fallback_key_types.
type Contributor struct {
	keys *keys.Service
}

// New returns the contributor for a keys service.
func New(k *keys.Service) *Contributor { return &Contributor{keys: k} }

var _ sync.Contributor = (*Contributor)(nil)

// Contribute implements sync.Contributor.
//
// To-device: the messages for the session's device in (w.Since, w.Upto] (all pending ones up
// to w.Upto on an initial sync). A since token is the acknowledgement of everything at or
// below it, so those messages are deleted, in a separate durable transaction (the sync
// transaction is read-only; deleting only positions <= since can never touch a message the
// client has not received).
//
// device_lists: only on incremental syncs (spec). One-time-key counts and unused fallback key
// types are always present; they alone never end a long-poll.
func (c *Contributor) Contribute(txn *store.Txn, sess *accounts.Session, w sync.Window, resp *sync.Response) error {
	user, dev := sess.User.String(), sess.Device
	since := w.Since
	if w.Initial {
		since = 0
	}
	evs, err := c.keys.ToDeviceEvents(txn, user, dev, since, w.Upto)
	if err != nil {
		return err
	}
	for _, e := range evs {
		resp.ToDevice.Events = append(resp.ToDevice.Events, e)
	}
	if since > 0 && !w.NoAck {
		pending, err := c.keys.PendingAck(txn, user, dev, since)
		if err != nil {
			return err
		}
		if pending {
			if err := c.keys.AckToDevice(user, dev, since); err != nil {
				return err
			}
		}
	}
	if !w.Initial {
		changed, left, err := c.keys.DeviceLists(txn, user, since, w.Upto)
		if err != nil {
			return err
		}
		resp.DeviceLists.Changed = merge(resp.DeviceLists.Changed, changed)
		resp.DeviceLists.Left = merge(resp.DeviceLists.Left, left)
	}
	counts, err := c.keys.OneTimeKeyCounts(txn, user, dev)
	if err != nil {
		return err
	}
	if resp.OTKCount == nil {
		resp.OTKCount = map[string]int{}
	}
	for k, v := range counts {
		resp.OTKCount[k] = v
	}
	if resp.FallbackKeys, err = c.keys.UnusedFallbackKeyTypes(txn, user, dev); err != nil {
		return err
	}
	return nil
}

func merge(a, b []string) []string {
	for _, x := range b {
		if !slices.Contains(a, x) {
			a = append(a, x)
		}
	}
	return a
}
