package keys

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/hearth-home/hearth/matrix/store"
)

// ClaimResponse is the body of the /keys/claim answer.
type ClaimResponse struct {
	Failures    map[string]any                                   `json:"failures"`
	OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
}

// Claim hands out one key per requested (user, device, algorithm): the oldest one-time key,
// or when none is left the device's fallback key, which is then marked used (and handed out
// again until replaced). Devices without a key are left out, and so are users with none.
func (s *Service) Claim(ctx context.Context, req map[string]map[string]string) (*ClaimResponse, error) {
	var resp *ClaimResponse
	err := s.st.Update(func(txn *store.Txn) error {
		resp = &ClaimResponse{Failures: map[string]any{}, OneTimeKeys: map[string]map[string]map[string]json.RawMessage{}}
		for u, devs := range req {
			if !s.isLocal(u) {
				continue // claimed from their servers below (remote_query.go)
			}
			for dev, alg := range devs {
				name, k, err := claimOne(txn, u, dev, alg)
				if err != nil {
					return err
				}
				if k == nil {
					continue
				}
				if resp.OneTimeKeys[u] == nil {
					resp.OneTimeKeys[u] = map[string]map[string]json.RawMessage{}
				}
				resp.OneTimeKeys[u][dev] = map[string]json.RawMessage{name: k}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.claimRemote(ctx, req, resp)
	return resp, nil
}

func claimOne(txn *store.Txn, user, dev, alg string) (string, json.RawMessage, error) {
	if dev == "" || alg == "" {
		return "", nil, nil
	}
	if _, err := txn.Device(user, dev); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = nil // no such device (or deleted, not yet cleaned up)
		}
		return "", nil, err
	}
	kid, k, ok, err := txn.ClaimOneTimeKey(user, dev, alg)
	if err != nil || ok {
		return alg + ":" + kid, k, err
	}
	fb, err := txn.FallbackKey(user, dev, alg)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	if !fb.Used {
		fb.Used = true
		if err := txn.PutFallbackKey(user, dev, fb); err != nil {
			return "", nil, err
		}
	}
	return alg + ":" + fb.KeyID, fb.Key, nil
}
