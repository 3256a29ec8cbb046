package push

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"time"

	"maunium.net/go/mautrix/pushrules"

	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// delivery is one notification for one pusher.
type delivery struct {
	user, appID, pushkey string
	url                  string
	body                 []byte
}

// Push Gateway API request body (/_matrix/push/v1/notify).
type gwDevice struct {
	AppID     string         `json:"app_id"`
	PushKey   string         `json:"pushkey"`
	PushKeyTS int64          `json:"pushkey_ts,omitempty"`
	Data      map[string]any `json:"data,omitempty"`
	Tweaks    map[string]any `json:"tweaks,omitempty"`
}

type gwCounts struct {
	Unread      int `json:"unread"`
	MissedCalls int `json:"missed_calls,omitempty"`
}

type gwNotification struct {
	EventID           string          `json:"event_id,omitempty"`
	RoomID            string          `json:"room_id,omitempty"`
	Type              string          `json:"type,omitempty"`
	Sender            string          `json:"sender,omitempty"`
	SenderDisplayName string          `json:"sender_display_name,omitempty"`
	RoomName          string          `json:"room_name,omitempty"`
	UserIsTarget      bool            `json:"user_is_target,omitempty"`
	Prio              string          `json:"prio"`
	Content           json.RawMessage `json:"content,omitempty"`
	Counts            gwCounts        `json:"counts"`
	Devices           []gwDevice      `json:"devices"`
}

// deliveriesFor builds the pushes of one notifying event for every pusher of user.
func (s *Service) deliveriesFor(txn *store.Txn, user string, ev *rooms.Event, roomName, senderName string, actions pushrules.PushActionArray) ([]delivery, error) {
	ps, err := userPushers(txn, user)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	unread := 0
	err = txn.PushCounts(user, func(_ uint64, r store.PushCountRecord) (bool, error) {
		unread += r.Notification
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	tweaks := map[string]any{}
	for _, a := range actions {
		if a.Action == pushrules.ActionSetTweak {
			if a.Value == nil && a.Tweak == pushrules.TweakHighlight {
				tweaks[string(a.Tweak)] = true
			} else {
				tweaks[string(a.Tweak)] = a.Value
			}
		}
	}
	prio := "low"
	if _, ok := tweaks["sound"]; ok || tweaks["highlight"] == true {
		prio = "high"
	}
	l := ev.Lite
	var out []delivery
	for _, p := range ps {
		u, _ := p.Data["url"].(string)
		data := maps.Clone(p.Data)
		delete(data, "url")
		n := gwNotification{
			EventID: ev.Rec.ID, RoomID: ev.RoomID, Prio: prio, Counts: gwCounts{Unread: unread},
			Devices: []gwDevice{{AppID: p.AppID, PushKey: p.PushKey, PushKeyTS: p.TS, Data: data, Tweaks: tweaks}},
		}
		if p.Data["format"] != "event_id_only" {
			n.Type, n.Sender, n.SenderDisplayName, n.RoomName = l.Type, l.Sender, senderName, roomName
			n.Content = l.Content
			n.UserIsTarget = l.StateKey != nil && *l.StateKey == user
		}
		b, err := json.Marshal(map[string]any{"notification": n})
		if err != nil {
			return nil, err
		}
		out = append(out, delivery{user: user, appID: p.AppID, pushkey: p.PushKey, url: u, body: b})
	}
	return out, nil
}

// enqueue hands a push to the delivery workers; a full queue drops it (the gateway is far
// behind or down, and the counts in sync stay right).
func (s *Service) enqueue(d delivery) {
	select {
	case s.deliveries <- d:
	default:
		s.log.Warn("push: delivery queue full, dropping", "user", d.user, "app_id", d.appID)
	}
}

func (s *Service) deliverLoop() {
	for {
		select {
		case <-s.stop:
			return
		case d := <-s.deliveries:
			s.deliver(d)
		}
	}
}

// deliver posts one push, retrying network errors, 5xx and 429 with exponential backoff.
func (s *Service) deliver(d delivery) {
	wait := s.RetryBase
	for attempt := 1; ; attempt++ {
		retry, err := s.post(d)
		if err == nil || !retry || attempt >= s.MaxAttempts {
			if err != nil {
				s.log.Warn("push: delivery failed", "user", d.user, "app_id", d.appID, "attempts", attempt, "err", err)
			}
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
		wait *= 2
	}
}

type httpStatusError int

func (e httpStatusError) Error() string { return "push gateway answered " + http.StatusText(int(e)) }

func (s *Service) post(d delivery) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, httpStatusError(resp.StatusCode)
	}
	var r struct {
		Rejected []string `json:"rejected"`
	}
	_ = json.Unmarshal(body, &r)
	for _, k := range r.Rejected {
		if k != d.pushkey {
			continue
		}
		s.mu.Lock()
		err := s.st.Update(func(txn *store.Txn) error { return txn.DeletePusher(d.user, d.appID, k) })
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("push: remove rejected pusher", "err", err)
		}
	}
	return false, nil
}
