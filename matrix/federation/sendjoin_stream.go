package federation

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Streaming decode of a send_join answer. A large room's answer (10,000 members: about ten
// megabytes of JSON, several times that once decoded into PDUs) must not be held whole: the
// decoder walks the top-level object with the token API and hands each PDU of "state" and
// "auth_chain" to a callback as soon as it is complete, so at most one event's JSON (plus the
// decoder's read buffer) is in memory at a time. Everything else is skipped token by token,
// except "event", the countersigned join, which is small and kept.

// maxStreamValue bounds the bytes one value may span (one PDU, the join event, one skipped
// token): the decoder buffers a whole value before returning it, so without this a hostile
// server could make us buffer an endless string. A PDU may be at most events.MaxPDUSize
// bytes as canonical JSON; the transport form may carry whitespace and escapes, hence the slack.
const maxStreamValue = 1 << 20

// maxSendJoinBytes bounds the whole answer. Streaming makes size cost time, not memory, but
// an answer must end; #matrix:matrix.org's is a few hundred megabytes.
const maxSendJoinBytes = 2 << 30

// errValueTooLarge reports a value longer than maxStreamValue.
var errValueTooLarge = errors.New("send_join answer: a value exceeds the size limit")

// The sections of a send_join answer whose PDUs are streamed.
const (
	sectionState     = "state"
	sectionAuthChain = "auth_chain"
)

// sendJoinHandler receives a streamed send_join answer.
type sendJoinHandler interface {
	// PDU is called for each element of "state" and "auth_chain" in the order they arrive;
	// raw is only valid during the call.
	PDU(section string, raw json.RawMessage) error
}

// handlerError carries an error of the handler (storage, a cancelled context) through the
// decoder, so that the caller can tell it from a malformed answer.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
func (e handlerError) Unwrap() error { return e.err }

// boundedReader counts what the decoder reads and fails once the current value has spanned
// more than limit bytes since the last mark, or the whole stream more than total.
type boundedReader struct {
	r            io.Reader
	n, mark      int64
	limit, total int64
}

// readChunk caps one Read, so that what the decoder has read ahead of its position (and so
// beyond the mark) stays small.
const readChunk = 64 << 10

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n-b.mark > b.limit+readChunk {
		return 0, errValueTooLarge
	}
	if b.n > b.total {
		return 0, fmt.Errorf("send_join answer exceeds %d bytes", b.total)
	}
	n, err := b.r.Read(p[:min(len(p), readChunk)])
	b.n += int64(n)
	return n, err
}

// decodeSendJoin reads a send_join answer from r, streaming the PDUs of "state" and
// "auth_chain" to h, and returns the "event" member (nil when absent).
func decodeSendJoin(r io.Reader, h sendJoinHandler) (json.RawMessage, error) {
	br := &boundedReader{r: r, limit: maxStreamValue, total: maxSendJoinBytes}
	dec := json.NewDecoder(br)
	// The reader may run ahead of the decoder by one buffer; marking at the decoder's offset
	// (never past what was read) keeps the bound a bound on one value plus that buffer.
	mark := func() { br.mark = min(dec.InputOffset(), br.n) }
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	var joinEvent json.RawMessage
	for dec.More() {
		mark()
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("send_join answer: %w", err)
		}
		key, _ := tok.(string)
		switch key {
		case sectionState, sectionAuthChain:
			if err := decodePDUList(dec, key, h, mark); err != nil {
				return nil, err
			}
		case "event":
			mark()
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("send_join answer: event: %w", err)
			}
			if string(raw) != "null" {
				joinEvent = raw
			}
		default:
			if err := skipValue(dec, mark); err != nil {
				return nil, fmt.Errorf("send_join answer: %s: %w", key, err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	return joinEvent, nil
}

// decodePDUList streams one array of PDUs (null counts as empty).
func decodePDUList(dec *json.Decoder, section string, h sendJoinHandler, mark func()) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("send_join answer: %s: %w", section, err)
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("send_join answer: %s is not an array", section)
	}
	for dec.More() {
		mark()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("send_join answer: %s: %w", section, err)
		}
		if len(raw) == 0 || raw[0] != '{' {
			return fmt.Errorf("send_join answer: %s holds a non-object", section)
		}
		if err := h.PDU(section, raw); err != nil {
			return handlerError{err}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return fmt.Errorf("send_join answer: %s: %w", section, err)
	}
	return nil
}

// skipValue consumes one value token by token, so that skipping a big member (a long
// servers_in_room) never buffers it whole.
func skipValue(dec *json.Decoder, mark func()) error {
	depth := 0
	for {
		mark()
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("send_join answer: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("send_join answer: expected %q, got %v", want, tok)
	}
	return nil
}
