package hue

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// maxEventLine bounds one line of the event stream; a container of events is one data line.
const maxEventLine = 1 << 20

// openStream starts GET /eventstream/clip/v2 and returns its body once the bridge answered.
func (a *Adapter) openStream(ctx context.Context) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.c.base+"/eventstream/clip/v2", nil)
	if err != nil {
		return nil, fmt.Errorf("hue: build event stream request: %w", err)
	}
	req.Header.Set("hue-application-key", a.c.key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := a.c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("hue: open event stream: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		resp.Body.Close()
		return nil, fmt.Errorf("%w (event stream: %s)", ErrUnauthorized, resp.Status)
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, fmt.Errorf("hue: open event stream: %s", resp.Status)
	}
	return resp.Body, nil
}

// follow reads server-sent events until the stream ends. Each event's data is a JSON list of
// event containers; see handle.
func (a *Adapter) follow(ctx context.Context, stream io.Reader, sink devices.Sink) error {
	sc := bufio.NewScanner(stream)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0: // a blank line ends one event
			if data.Len() == 0 {
				continue
			}
			resync := a.handle(data.Bytes(), sink)
			data.Reset()
			if resync {
				if err := a.sync(ctx, sink); err != nil {
					return fmt.Errorf("hue: re-list after change: %w", err)
				}
			}
		case line[0] == ':': // comment, e.g. the bridge's ": hi" greeting
		case bytes.HasPrefix(line, []byte("data:")):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" ")))
		default: // "id:", "event:", "retry:" carry nothing Hearth needs
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("hue: event stream: %w", err)
	}
	return errors.New("hue: event stream closed by the bridge")
}

// handle applies one batch of events. State updates are reported directly; anything that
// changes which devices exist, their names or rooms asks for a re-listing instead of being
// patched piecemeal.
func (a *Adapter) handle(data []byte, sink devices.Sink) (resync bool) {
	var containers []event
	if err := json.Unmarshal(data, &containers); err != nil {
		a.log.Warn("hue: undecodable event", "err", err)
		return false
	}
	now := time.Now()
	for _, ev := range containers {
		for _, raw := range ev.Data {
			var head struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			}
			if err := json.Unmarshal(raw, &head); err != nil {
				continue
			}
			switch head.Type {
			case "light", "scene", "room", "device", "zone":
			case "zigbee_connectivity":
				if ev.Type == "update" {
					a.connectivity(raw, sink, now)
				}
				continue
			default:
				continue
			}
			if ev.Type != "update" || head.Type == "room" || head.Type == "device" || head.Type == "zone" {
				resync = true
				continue
			}
			resync = a.update(head.Type, raw, sink, now) || resync
		}
	}
	return resync
}

// update reports a light or scene update event; it asks for a re-listing when the update
// renames the resource or concerns one not yet known. (Newer firmware repeats the immutable
// owner and group in every update, so those do not count as changes.)
func (a *Adapter) update(typ string, raw json.RawMessage, sink devices.Sink, now time.Time) (resync bool) {
	switch typ {
	case "light":
		var l light
		if err := json.Unmarshal(raw, &l); err != nil {
			return false
		}
		a.mu.Lock()
		info := a.lights[l.ID]
		reachable := info != nil && info.reachable
		a.mu.Unlock()
		if info == nil || l.Metadata != nil {
			return true
		}
		if st, ok := lightState(l, reachable, now); ok {
			sink.Report(a.lightID(l.ID), st)
		}
	case "scene":
		var sc scene
		if err := json.Unmarshal(raw, &sc); err != nil {
			return false
		}
		a.mu.Lock()
		known := a.scenes[sc.ID]
		a.mu.Unlock()
		if !known || sc.Metadata != nil {
			return true
		}
		if st, ok := sceneState(sc, now); ok {
			sink.Report(a.sceneID(sc.ID), st)
		}
	}
	return false
}

// connectivity marks the lights of a device reachable or not.
func (a *Adapter) connectivity(raw json.RawMessage, sink devices.Sink, now time.Time) {
	var z zigbeeConnectivity
	if err := json.Unmarshal(raw, &z); err != nil || z.Status == "" {
		return
	}
	ok := z.Status == "connected"
	var ids []string
	a.mu.Lock()
	owner := a.zigbee[z.ID] // events may omit the owner; the listing had it
	if z.Owner != nil {
		owner = z.Owner.RID
	}
	for id, info := range a.lights {
		if owner != "" && info.device == owner {
			info.reachable = ok
			ids = append(ids, a.lightID(id))
		}
	}
	a.mu.Unlock()
	for _, id := range ids {
		sink.Report(id, devices.State{Available: ok, LastSeen: now})
	}
}
