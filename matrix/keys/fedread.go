package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Read side of the federation E2EE endpoints: what a remote server may learn of local users'
// keys. A remote server never sees user-signing keys, nor signatures other users made.

// FedDevice is one device in a federation /user/devices answer.
type FedDevice struct {
	DeviceID    string          `json:"device_id"`
	Keys        json.RawMessage `json:"keys"`
	DisplayName string          `json:"device_display_name,omitempty"`
}

// FedDevices is the federation /user/devices answer.
type FedDevices struct {
	UserID         string          `json:"user_id"`
	StreamID       uint64          `json:"stream_id"`
	Devices        []FedDevice     `json:"devices"`
	MasterKey      json.RawMessage `json:"master_key,omitempty"`
	SelfSigningKey json.RawMessage `json:"self_signing_key,omitempty"`
}

// FedUserDevices lists a local user's devices that have uploaded keys, with the user's master
// and self-signing keys. stream_id is the position of the user's newest device-list change.
// A user of another server is 400 M_INVALID_PARAM.
func (s *Service) FedUserDevices(ctx context.Context, user id.UserID) (*FedDevices, error) {
	if !s.isLocal(user.String()) {
		return nil, merr.InvalidParam("user %s is not local to this server", user)
	}
	out := &FedDevices{UserID: user.String(), Devices: []FedDevice{}}
	err := s.st.View(func(txn *store.Txn) error {
		// stream_id is the ID of the last m.device_list_update sent for the user, so that a
		// receiver can chain the next update (prev_id) onto this answer; before any update
		// was sent it is the stream position of the newest change, which no update's prev_id
		// matches, so the receiver resyncs once on the first update.
		fid, err := txn.FedDeviceListID(user.String())
		if err != nil {
			return err
		}
		if out.StreamID = fid; fid == 0 {
			if out.StreamID, err = txn.DeviceListPos(user.String()); err != nil {
				return err
			}
		}
		devs, err := queryDevices(txn, user.String(), nil)
		if err != nil {
			return err
		}
		for dev, raw := range devs {
			var k map[string]json.RawMessage
			if err := json.Unmarshal(raw, &k); err != nil {
				return fmt.Errorf("decode device keys of %s %s: %w", user, dev, err)
			}
			var u struct {
				Name string `json:"device_display_name"`
			}
			_ = json.Unmarshal(k["unsigned"], &u)
			delete(k, "unsigned") // the display name has its own field here
			b, err := json.Marshal(k)
			if err != nil {
				return fmt.Errorf("encode device keys: %w", err)
			}
			out.Devices = append(out.Devices, FedDevice{DeviceID: dev, Keys: b, DisplayName: u.Name})
		}
		if out.MasterKey, err = crossSigningKey(txn, user.String(), UsageMaster, ""); err != nil {
			return err
		}
		out.SelfSigningKey, err = crossSigningKey(txn, user.String(), UsageSelfSigning, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out.Devices, func(i, j int) bool { return out.Devices[i].DeviceID < out.Devices[j].DeviceID })
	return out, nil
}

// FedQueryResponse is the federation /user/keys/query answer.
type FedQueryResponse struct {
	DeviceKeys      map[string]map[string]json.RawMessage `json:"device_keys"`
	MasterKeys      map[string]json.RawMessage            `json:"master_keys,omitempty"`
	SelfSigningKeys map[string]json.RawMessage            `json:"self_signing_keys,omitempty"`
}

// FedQuery answers a remote server's key query for local users; users of other servers are
// ignored (the spec says requested users must be local).
func (s *Service) FedQuery(ctx context.Context, users map[string][]string) (*FedQueryResponse, error) {
	local := map[string][]string{}
	for u, devs := range users {
		if s.isLocal(u) {
			local[u] = devs
		}
	}
	// An empty requester: no user-signing keys and only the owners' own signatures.
	r, err := s.Query(ctx, "", local)
	if err != nil {
		return nil, err
	}
	return &FedQueryResponse{DeviceKeys: r.DeviceKeys, MasterKeys: r.MasterKeys, SelfSigningKeys: r.SelfSigningKeys}, nil
}

// FedClaim claims one-time keys of local users for a remote server; users of other servers
// are ignored.
func (s *Service) FedClaim(ctx context.Context, req map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
	local := map[string]map[string]string{}
	for u, devs := range req {
		if s.isLocal(u) {
			local[u] = devs
		}
	}
	r, err := s.Claim(ctx, local)
	if err != nil {
		return nil, err
	}
	return r.OneTimeKeys, nil
}
