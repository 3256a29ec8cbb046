package mqtt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// kv is one member of a JSON object whose member order matters: devices and tests compare
// payloads as text, and {"state":"ON","brightness":127} is what Zigbee2MQTT documents.
type kv struct {
	k string
	v any // string, int, float64, bool, or []kv for a nested object
}

// orderedJSON encodes the pairs as one JSON object in the given order.
func orderedJSON(pairs []kv) []byte {
	var b bytes.Buffer
	writeObject(&b, pairs)
	return b.Bytes()
}

func writeObject(b *bytes.Buffer, pairs []kv) {
	b.WriteByte('{')
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(p.k)
		b.Write(k)
		b.WriteByte(':')
		if nested, ok := p.v.([]kv); ok {
			writeObject(b, nested)
			continue
		}
		v, err := json.Marshal(p.v)
		if err != nil { // only numbers and strings reach here; NaN is the one failure
			v = []byte("null")
		}
		b.Write(v)
	}
	b.WriteByte('}')
}

// lstr is a discovery option that HA converts to a string whatever JSON type it was given
// (payload_on: true becomes "True", 1 becomes "1"), as its config schema does.
type lstr struct {
	s   string
	set bool
}

func (l *lstr) UnmarshalJSON(b []byte) error {
	v, err := decodeJSON(b)
	if err != nil {
		return fmt.Errorf("option value: %w", err)
	}
	if v == nil {
		return nil
	}
	switch v.(type) {
	case map[string]any, []any:
		return fmt.Errorf("option value %s is not a scalar", b)
	}
	*l = lstr{s: toText(v), set: true}
	return nil
}

func (l lstr) or(def string) string {
	if l.set {
		return l.s
	}
	return def
}

// parseFloats parses "a,b,c" (rgb) or "a,b" (hs, xy) state payloads into n floats.
func parseFloats(s string, n int) ([]float64, bool) {
	parts := strings.Split(strings.TrimSpace(s), ",")
	if len(parts) != n {
		return nil, false
	}
	out := make([]float64, n)
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, false
		}
		out[i] = f
	}
	return out, true
}
