package hue

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/hearth-home/hearth/devices"
)

// zigbeeConnectivity is a /clip/v2/resource/zigbee_connectivity item: whether the bridge can
// reach a device over Zigbee.
type zigbeeConnectivity struct {
	ID     string       `json:"id"`
	Owner  *resourceRef `json:"owner,omitempty"`
	Status string       `json:"status,omitempty"` // "connected", "disconnected", "connectivity_issue", ...
}

// snapshot is one complete listing of the bridge.
type snapshot struct {
	lights  []light
	devices []device
	rooms   []room
	scenes  []scene
	zigbee  []zigbeeConnectivity
}

func (a *Adapter) fetch(ctx context.Context) (snapshot, error) {
	var s snapshot
	for _, r := range []struct {
		path string
		out  any
	}{
		{"/clip/v2/resource/light", &s.lights},
		{"/clip/v2/resource/device", &s.devices},
		{"/clip/v2/resource/room", &s.rooms},
		{"/clip/v2/resource/scene", &s.scenes},
		{"/clip/v2/resource/zigbee_connectivity", &s.zigbee},
	} {
		if err := a.c.get(ctx, r.path, r.out); err != nil {
			return s, fmt.Errorf("list: %w", err)
		}
	}
	return s, nil
}

// sync lists the bridge and announces every light and scene, removing those that are gone.
func (a *Adapter) sync(ctx context.Context, sink devices.Sink) error {
	s, err := a.fetch(ctx)
	if err != nil {
		return err
	}
	roomOf := map[string]string{} // Hue device id -> room name
	roomName := map[string]string{}
	for _, r := range s.rooms {
		roomName[r.ID] = r.Metadata.Name
		for _, ch := range r.Children {
			if ch.RType == "device" {
				roomOf[ch.RID] = r.Metadata.Name
			}
		}
	}
	devByID := map[string]device{}
	for _, d := range s.devices {
		devByID[d.ID] = d
	}
	reachable := map[string]bool{} // Hue device id -> reachable; absent means no report
	zigbee := map[string]string{}
	for _, z := range s.zigbee {
		if z.Owner != nil {
			reachable[z.Owner.RID] = z.Status == "connected"
			zigbee[z.ID] = z.Owner.RID
		}
	}

	lights := make(map[string]*lightInfo, len(s.lights))
	scenes := make(map[string]bool, len(s.scenes))
	now := time.Now()
	for _, l := range s.lights {
		info := &lightInfo{reachable: true}
		var owner device
		if l.Owner != nil {
			info.device = l.Owner.RID
			owner = devByID[l.Owner.RID]
			if r, ok := reachable[l.Owner.RID]; ok {
				info.reachable = r
			}
		}
		if l.ColorTemperature != nil {
			info.schema = l.ColorTemperature.MirekSchema
		}
		lights[l.ID] = info
		name := owner.Metadata.Name
		if l.Metadata != nil && l.Metadata.Name != "" {
			name = l.Metadata.Name
		}
		model := owner.ProductData.ProductName
		if model == "" {
			model = owner.ProductData.ModelID
		}
		sink.Upsert(devices.Device{
			ID:      a.lightID(l.ID),
			Name:    name,
			Kind:    devices.Light,
			Adapter: a.name,
			Area:    roomOf[info.device],
			Model:   model,
			Caps: devices.Caps{
				Brightness: l.Dimming != nil,
				ColorTemp:  l.ColorTemperature != nil,
				Color:      l.Color != nil,
			},
		})
		st, _ := lightState(l, info.reachable, now)
		sink.Report(a.lightID(l.ID), st)
	}
	for _, sc := range s.scenes {
		scenes[sc.ID] = true
		d := devices.Device{ID: a.sceneID(sc.ID), Kind: devices.Switch, Adapter: a.name, Model: "scene"}
		if sc.Metadata != nil {
			d.Name = sc.Metadata.Name
		}
		if sc.Group != nil {
			d.Area = roomName[sc.Group.RID]
		}
		sink.Upsert(d)
		st, _ := sceneState(sc, now)
		sink.Report(d.ID, st)
	}

	a.mu.Lock()
	var gone []string
	for id := range a.lights {
		if lights[id] == nil {
			gone = append(gone, a.lightID(id))
		}
	}
	for id := range a.scenes {
		if !scenes[id] {
			gone = append(gone, a.sceneID(id))
		}
	}
	a.lights, a.scenes, a.zigbee = lights, scenes, zigbee
	a.mu.Unlock()
	for _, id := range gone {
		sink.Remove(id)
	}
	return nil
}

// lightState turns a light, complete or as a partial update event, into a state report; ok is
// false when the update carries nothing Hearth models.
func lightState(l light, reachable bool, now time.Time) (st devices.State, ok bool) {
	st = devices.State{Available: reachable, LastSeen: now}
	if l.On != nil {
		on := l.On.On
		st.On, ok = &on, true
	}
	if l.Dimming != nil {
		b := int(math.Round(l.Dimming.Brightness))
		st.Brightness, ok = &b, true
	}
	if ct := l.ColorTemperature; ct != nil && ct.Mirek != nil && ct.MirekValid {
		k := mirekToKelvin(*ct.Mirek)
		st.ColorTemp, ok = &k, true
	}
	if l.Color != nil {
		c := xyToRGB(l.Color.XY)
		st.Color, ok = &c, true
	}
	return st, ok
}

// sceneState reports a scene as on while it is active.
func sceneState(sc scene, now time.Time) (devices.State, bool) {
	st := devices.State{Available: true, LastSeen: now}
	if sc.Status == nil {
		return st, false
	}
	on := sc.Status.Active != "" && sc.Status.Active != "inactive"
	st.On = &on
	return st, true
}
