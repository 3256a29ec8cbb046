package mqtt

import (
	"strings"
)

// availSource is one HA availability topic with its payloads.
type availSource struct {
	topic    string
	on, off  string
	template *Template
}

// availability tracks HA availability: with no topics the entity is always available; with
// topics it is unavailable until told otherwise, and availability_mode decides how several
// topics combine ("latest" (default): the last message wins; "all"; "any").
type availability struct {
	sources []availSource
	mode    string
	status  map[string]bool // per topic, once a recognised payload arrived
	latest  bool
}

func (a *availability) topics() []string {
	out := make([]string, 0, len(a.sources))
	for _, s := range a.sources {
		out = append(out, s.topic)
	}
	return out
}

// handle applies a message if topic is an availability topic and reports whether it was.
func (a *availability) handle(topic string, payload []byte) bool {
	handled := false
	for _, s := range a.sources {
		if s.topic != topic {
			continue
		}
		handled = true
		v := string(payload)
		if s.template != nil {
			out, err := s.template.Render(InputFromPayload(payload))
			if err != nil {
				continue
			}
			v = out
		}
		v = strings.TrimSpace(v)
		var up bool
		switch v {
		case s.on:
			up = true
		case s.off:
			up = false
		default:
			continue
		}
		if a.status == nil {
			a.status = make(map[string]bool)
		}
		a.status[topic] = up
		a.latest = up
	}
	return handled
}

func (a *availability) available() bool {
	if len(a.sources) == 0 {
		return true
	}
	switch a.mode {
	case "all":
		for _, s := range a.sources {
			if !a.status[s.topic] {
				return false
			}
		}
		return true
	case "any":
		for _, s := range a.sources {
			if a.status[s.topic] {
				return true
			}
		}
		return false
	}
	return a.latest
}
