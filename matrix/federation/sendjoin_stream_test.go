package federation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// recorder is a sendJoinHandler that keeps what it was given.
type recorder struct {
	sections []string
	pdus     []string
	failAt   int // fail on this call (1-based); 0 never
}

func (r *recorder) PDU(section string, raw json.RawMessage) error {
	r.sections = append(r.sections, section)
	r.pdus = append(r.pdus, string(raw))
	if r.failAt == len(r.pdus) {
		return errors.New("handler refuses")
	}
	return nil
}

// fakePDU is a distinct member-event-like object; the decoder does not look inside.
func fakePDU(i int) string {
	return fmt.Sprintf(`{"type":"m.room.member","state_key":"@u%05d:hs","content":{"membership":"join","displayname":"User \"%d\" \u00e9"},"auth_events":["$a","$b"],"depth":%d}`, i, i, i)
}

func answer(order []string, state, chain int, extra string) string {
	var b strings.Builder
	b.WriteString("{")
	for i, key := range order {
		if i > 0 {
			b.WriteString(",\n ")
		}
		switch key {
		case "state", "auth_chain":
			n, base := state, 0
			if key == "auth_chain" {
				n, base = chain, 100000
			}
			fmt.Fprintf(&b, "%q: [", key)
			for j := 0; j < n; j++ {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString(fakePDU(base + j))
			}
			b.WriteString("]")
		case "event":
			b.WriteString(`"event": {"type":"m.room.member","state_key":"@joiner:hs"}`)
		default:
			b.WriteString(key)
		}
	}
	b.WriteString(extra)
	b.WriteString("}")
	return b.String()
}

func TestDecodeSendJoinStreamsEveryPDUInOrder(t *testing.T) {
	servers := make([]string, 3000)
	for i := range servers {
		servers[i] = fmt.Sprintf("server%d.example", i)
	}
	sb, _ := json.Marshal(servers)
	others := []string{
		`"origin": "resident.example"`,
		`"members_omitted": false`,
		`"servers_in_room": ` + string(sb),
		`"unknown": {"nested": [1, {"deep": [true, null, "x"]}], "n": 2.5}`,
	}
	cases := map[string][]string{
		"state first":      append([]string{"state", "auth_chain", "event"}, others...),
		"auth chain first": append([]string{"auth_chain", "event", "state"}, others...),
		"others first":     append(append([]string{}, others...), "event", "state", "auth_chain"),
	}
	for name, order := range cases {
		t.Run(name, func(t *testing.T) {
			r := &recorder{}
			ev, err := decodeSendJoin(strings.NewReader(answer(order, 500, 20, "")), r)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(ev), `"@joiner:hs"`) {
				t.Fatalf("event = %s", ev)
			}
			if len(r.pdus) != 520 {
				t.Fatalf("got %d PDUs, want 520", len(r.pdus))
			}
			// Each section arrives whole and in document order, byte for byte.
			var state, chain []string
			for i, s := range r.sections {
				switch s {
				case sectionState:
					state = append(state, r.pdus[i])
				case sectionAuthChain:
					chain = append(chain, r.pdus[i])
				default:
					t.Fatalf("unknown section %q", s)
				}
			}
			if len(state) != 500 || len(chain) != 20 {
				t.Fatalf("state %d, auth chain %d", len(state), len(chain))
			}
			for i, p := range state {
				if p != fakePDU(i) {
					t.Fatalf("state[%d] = %s, want %s", i, p, fakePDU(i))
				}
			}
			for i, p := range chain {
				if p != fakePDU(100000+i) {
					t.Fatalf("auth_chain[%d] = %s", i, p)
				}
			}
		})
	}
}

func TestDecodeSendJoinNullsAndAbsentEvent(t *testing.T) {
	r := &recorder{}
	ev, err := decodeSendJoin(strings.NewReader(`{"state": null, "auth_chain": [], "event": null}`), r)
	if err != nil || ev != nil || len(r.pdus) != 0 {
		t.Fatalf("ev %s, err %v, %d PDUs", ev, err, len(r.pdus))
	}
}

func TestDecodeSendJoinRejectsMalformedAnswers(t *testing.T) {
	big := `{"state": [{"type": "` + strings.Repeat("x", 3<<20) + `"}]}`
	cases := map[string]string{
		"not an object":      `["state"]`,
		"state not an array": `{"state": {"a": 1}}`,
		"non-object PDU":     `{"state": ["$event"]}`,
		"truncated":          `{"state": [{"type": "m.room.member"}, {"ty`,
		"unclosed object":    `{"state": []`,
		"bad token":          `{"state": [], "x": tru}`,
		"empty":              ``,
		"oversized PDU":      big,
		"oversized skipped":  `{"x": "` + strings.Repeat("y", 3<<20) + `"}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := decodeSendJoin(strings.NewReader(body), &recorder{})
			if err == nil {
				t.Fatal("accepted")
			}
			var he handlerError
			if errors.As(err, &he) {
				t.Fatalf("reported as a handler error: %v", err)
			}
			if strings.HasPrefix(name, "oversized") && !errors.Is(err, errValueTooLarge) {
				t.Fatalf("err = %v, want the size limit", err)
			}
		})
	}
}

func TestDecodeSendJoinStopsAtHandlerError(t *testing.T) {
	r := &recorder{failAt: 7}
	_, err := decodeSendJoin(strings.NewReader(answer([]string{"state", "auth_chain"}, 50, 5, "")), r)
	var he handlerError
	if !errors.As(err, &he) || he.err.Error() != "handler refuses" {
		t.Fatalf("err = %v, want the handler's", err)
	}
	if len(r.pdus) != 7 {
		t.Fatalf("handler called %d times after failing at 7", len(r.pdus))
	}
}

// slowReader hands out one byte per Read, the worst case for a streaming decoder.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) { return s.r.Read(p[:1]) }

func TestDecodeSendJoinByteAtATime(t *testing.T) {
	r := &recorder{}
	body := answer([]string{"state", "auth_chain", "event"}, 30, 3, "")
	if _, err := decodeSendJoin(slowReader{strings.NewReader(body)}, r); err != nil {
		t.Fatal(err)
	}
	if len(r.pdus) != 33 || r.pdus[29] != fakePDU(29) {
		t.Fatalf("got %d PDUs", len(r.pdus))
	}
}

// BenchmarkDecodeSendJoin decodes a 10,000-member answer; allocations per op show what the
// decoder itself costs (it holds one PDU at a time).
func BenchmarkDecodeSendJoin(b *testing.B) {
	body := []byte(answer([]string{"state", "auth_chain", "event"}, 10000, 50, ""))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeSendJoin(bytes.NewReader(body), nopHandler{}); err != nil {
			b.Fatal(err)
		}
	}
}

type nopHandler struct{}

func (nopHandler) PDU(string, json.RawMessage) error { return nil }
