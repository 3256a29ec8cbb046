package keys

import (
	"context"
	"encoding/json"
	"errors"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/store"
)

// Cross-signing key usages.
const (
	UsageMaster      = "master"
	UsageSelfSigning = "self_signing"
	UsageUserSigning = "user_signing"
)

// QueryResponse is the body of the /keys/query answer.
type QueryResponse struct {
	Failures        map[string]any                        `json:"failures"`
	DeviceKeys      map[string]map[string]json.RawMessage `json:"device_keys"`
	MasterKeys      map[string]json.RawMessage            `json:"master_keys"`
	SelfSigningKeys map[string]json.RawMessage            `json:"self_signing_keys"`
	UserSigningKeys map[string]json.RawMessage            `json:"user_signing_keys"`
}

// Query returns the device and cross-signing keys of users (each with a list of device IDs,
// empty for all), as requester may see them. Every queried local user appears in
// device_keys, with an empty object when they have no keys.
func (s *Service) Query(ctx context.Context, requester id.UserID, users map[string][]string) (*QueryResponse, error) {
	resp := &QueryResponse{
		Failures:        map[string]any{},
		DeviceKeys:      map[string]map[string]json.RawMessage{},
		MasterKeys:      map[string]json.RawMessage{},
		SelfSigningKeys: map[string]json.RawMessage{},
		UserSigningKeys: map[string]json.RawMessage{},
	}
	req := requester.String()
	err := s.st.View(func(txn *store.Txn) error {
		for u, devices := range users {
			if !s.isLocal(u) {
				continue // asked of their servers below (remote_query.go)
			}
			out, err := queryDevices(txn, u, devices)
			if err != nil {
				return err
			}
			resp.DeviceKeys[u] = out
			for _, x := range []struct {
				usage string
				into  map[string]json.RawMessage
			}{{UsageMaster, resp.MasterKeys}, {UsageSelfSigning, resp.SelfSigningKeys}, {UsageUserSigning, resp.UserSigningKeys}} {
				if x.usage == UsageUserSigning && u != req {
					continue // a user-signing key is only shown to its owner
				}
				k, err := crossSigningKey(txn, u, x.usage, req)
				if err != nil {
					return err
				}
				if k != nil {
					x.into[u] = k
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.queryRemote(ctx, users, resp)
	return resp, nil
}

func queryDevices(txn *store.Txn, user string, devices []string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	add := func(dev string, rec *store.DeviceKeysRecord) error {
		d, err := txn.Device(user, dev)
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted device whose keys are not cleaned up yet
		}
		if err != nil {
			return err
		}
		extra, err := visibleSignatures(txn, user, dev, user)
		if err != nil {
			return err
		}
		unsigned := map[string]any{}
		if d.DisplayName != "" {
			unsigned["device_display_name"] = d.DisplayName
		}
		k, err := withSignatures(rec.Keys, extra, unsigned)
		if err != nil {
			return err
		}
		out[dev] = k
		return nil
	}
	if len(devices) == 0 {
		var recs []*store.DeviceKeysRecord
		var ids []string
		err := txn.UserDeviceKeys(user, func(dev string, rec *store.DeviceKeysRecord) (bool, error) {
			ids, recs = append(ids, dev), append(recs, rec)
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		for i := range ids {
			if err := add(ids[i], recs[i]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	for _, dev := range devices {
		rec, err := txn.DeviceKeys(user, dev)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := add(dev, rec); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// visibleSignatures collects the separately uploaded signatures of user's key keyID that
// viewer may see: the owner's own (self-signing key on devices, devices on the master key) and
// the viewer's (their user-signing key on someone's master key). Signatures made by other
// users' user-signing keys stay private to them.
func visibleSignatures(txn *store.Txn, user, keyID, viewer string) (Signatures, error) {
	out := Signatures{}
	err := txn.KeySignatures(user, keyID, func(signer, signerKeyID, sig string) (bool, error) {
		if signer == user || signer == viewer {
			if out[signer] == nil {
				out[signer] = map[string]string{}
			}
			out[signer][signerKeyID] = sig
		}
		return true, nil
	})
	return out, err
}

// crossSigningKey loads a user's cross-signing key of a usage with the signatures viewer may
// see, or nil.
func crossSigningKey(txn *store.Txn, user, usage, viewer string) (json.RawMessage, error) {
	k, err := txn.CrossSigningKey(user, usage)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ck, err := parseCrossSigningKey(k)
	if err != nil {
		return nil, err
	}
	extra, err := visibleSignatures(txn, user, ck.pub, viewer)
	if err != nil {
		return nil, err
	}
	return withSignatures(k, extra, nil)
}
