package push

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// NotifyPath is the path every HTTP pusher's URL must have (Push Gateway API).
const NotifyPath = "/_matrix/push/v1/notify"

// Pusher is the spec's Pusher as GET /pushers returns it.
type Pusher struct {
	PushKey           string         `json:"pushkey"`
	Kind              string         `json:"kind"`
	AppID             string         `json:"app_id"`
	AppDisplayName    string         `json:"app_display_name"`
	DeviceDisplayName string         `json:"device_display_name"`
	ProfileTag        string         `json:"profile_tag,omitempty"`
	Lang              string         `json:"lang"`
	Data              map[string]any `json:"data"`
}

// storedPusher is a pusher as kept in the store.
type storedPusher struct {
	Pusher
	TS     int64  `json:"pushkey_ts"`       // when it was set, in seconds (the gateway's pushkey_ts)
	Device string `json:"device,omitempty"` // device whose session set it; removed with the device
}

// SetPusher is POST /pushers/set: create, replace or (kind null) delete a pusher.
func (s *Service) SetPusher(ctx context.Context, user id.UserID, device string, body []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return merr.BadJSON("invalid pusher: %v", err)
	}
	var req struct {
		Pusher
		Kind   *string `json:"kind"`
		Append bool    `json:"append"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return merr.BadJSON("invalid pusher: %v", err)
	}
	if _, ok := raw["kind"]; !ok {
		return merr.MissingParam("kind is required")
	}
	if req.PushKey == "" || req.AppID == "" {
		return merr.MissingParam("pushkey and app_id are required")
	}
	if len(req.AppID) > 64 || len(req.PushKey) > 512 {
		return merr.InvalidParam("app_id or pushkey too long")
	}
	if req.Kind == nil { // delete
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.st.Update(func(txn *store.Txn) error {
			return txn.DeletePusher(user.String(), req.AppID, req.PushKey)
		})
	}
	p := req.Pusher
	p.Kind = *req.Kind
	switch {
	case p.Kind != "http":
		return merr.InvalidParam("unsupported pusher kind %q", p.Kind)
	case p.AppDisplayName == "" || p.DeviceDisplayName == "" || p.Lang == "":
		return merr.MissingParam("app_display_name, device_display_name and lang are required")
	case p.Data == nil:
		return merr.MissingParam("data is required")
	}
	us, _ := p.Data["url"].(string)
	if us == "" {
		return merr.MissingParam("data.url is required for http pushers")
	}
	u, err := url.Parse(us)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != NotifyPath {
		return merr.InvalidParam("data.url must be an http(s) URL with the path %s", NotifyPath)
	}
	b, err := json.Marshal(storedPusher{Pusher: p, TS: time.Now().Unix(), Device: device})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Update(func(txn *store.Txn) error {
		if !req.Append { // the pushkey now belongs to this user only
			var others []string
			err := txn.Pushers("", func(owner string, v json.RawMessage) (bool, error) {
				var o storedPusher
				if json.Unmarshal(v, &o) == nil && owner != user.String() && o.AppID == p.AppID && o.PushKey == p.PushKey {
					others = append(others, owner)
				}
				return true, nil
			})
			if err != nil {
				return err
			}
			for _, o := range others {
				if err := txn.DeletePusher(o, p.AppID, p.PushKey); err != nil {
					return err
				}
			}
		}
		return txn.PutPusher(user.String(), p.AppID, p.PushKey, b)
	})
}

func userPushers(txn *store.Txn, user string) ([]storedPusher, error) {
	var out []storedPusher
	err := txn.Pushers(user, func(_ string, v json.RawMessage) (bool, error) {
		var p storedPusher
		if err := json.Unmarshal(v, &p); err != nil {
			return false, err
		}
		out = append(out, p)
		return true, nil
	})
	return out, err
}

// Pushers is GET /pushers.
func (s *Service) Pushers(ctx context.Context, user id.UserID) ([]Pusher, error) {
	out := []Pusher{}
	err := s.st.View(func(txn *store.Txn) error {
		ps, err := userPushers(txn, user.String())
		for _, p := range ps {
			out = append(out, p.Pusher)
		}
		return err
	})
	return out, err
}

// dropOrphanPushers deletes the user's pushers whose device no longer exists (logged out, or
// removed by a password change): the spec says a password change removes the pushers of the
// other sessions.
func (s *Service) dropOrphanPushers(user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Update(func(txn *store.Txn) error {
		ps, err := userPushers(txn, user)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Device == "" {
				continue
			}
			if _, err := txn.Device(user, p.Device); errors.Is(err, store.ErrNotFound) {
				if err := txn.DeletePusher(user, p.AppID, p.PushKey); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		return nil
	})
}
