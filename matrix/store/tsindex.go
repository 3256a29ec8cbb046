package store

import (
	"encoding/json"
	"fmt"
)

// The timestamp index answers jump to date (/timestamp_to_event) without walking a room: its
// events by origin_server_ts, then depth (the topological order), then position. Timestamps
// are chosen by senders (application services may backdate with ?ts), so the stream order
// says nothing about them and a search over it would be wrong.
//
// The index is built lazily from the event records (every event gets one, whatever order it
// belongs to: timeline, backfill, gap fill, outlier), up to a mark kept in meta. Flags are
// not indexed: an outlier that later joins an order keeps its position, so readers check the
// record's current flags, and skip entries whose event has been purged.

const tsIndexMarkName = "tsx_mark"

// TSIndexMark is the stream position up to which events are in the timestamp index.
func (t *Txn) TSIndexMark() (uint64, error) {
	b, err := t.get(metaKey(tsIndexMarkName))
	if err == ErrNotFound {
		return 0, nil
	}
	return U64(b), err
}

// SetTSIndexMark records how far the timestamp index reaches.
func (t *Txn) SetTSIndexMark(pos uint64) error { return t.set(metaKey(tsIndexMarkName), be64(pos)) }

// IndexTimestamps adds the events at positions in (from, upto] to the timestamp index, at
// most max of them, and returns the last position it indexed (from when none) and how many it
// indexed (fewer than max: none is left up to upto). The caller sets the mark.
func (t *Txn) IndexTimestamps(from, upto uint64, max int) (uint64, int, error) {
	last := from
	var keys [][]byte // written after the scan: the iterator is not to see its own writes
	prefix := []byte{pEvent}
	err := t.scan(prefix, eventKey(from+1), false, true, func(k, v []byte) (bool, error) {
		pos := U64(k[1:])
		if pos > upto || len(keys) >= max {
			return false, nil
		}
		var rec struct {
			Room uint64          `json:"r"`
			PDU  json.RawMessage `json:"p"`
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			return false, fmt.Errorf("timestamp index: event %d: %w", pos, err)
		}
		var p struct {
			TS    int64 `json:"origin_server_ts"`
			Depth int64 `json:"depth"`
		}
		// A PDU whose fields do not decode is indexed at 0: it stays findable and harmless.
		_ = json.Unmarshal(rec.PDU, &p)
		keys = append(keys, tsIndexKey(rec.Room, p.TS, uint64(max64(p.Depth, 0)), pos))
		last = pos
		return true, nil
	})
	if err != nil {
		return from, 0, err
	}
	for _, k := range keys {
		if err := t.set(k, nil); err != nil {
			return from, 0, err
		}
	}
	return last, len(keys), nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// TimestampOrder walks a room's events from ts: forwards, those at or after ts by (ts,
// depth, position) ascending; backwards, those at or before ts descending. fn gets each
// event's timestamp and position and returns false to stop.
func (t *Txn) TimestampOrder(room uint64, ts int64, backwards bool, fn func(ts int64, pos uint64) (bool, error)) error {
	start := tsIndexKey(room, ts, 0, 0)
	if backwards {
		start = tsIndexKey(room, ts, ^uint64(0), ^uint64(0))
	}
	prefix := tsIndexPrefix(room)
	return t.scan(prefix, start, backwards, false, func(k, _ []byte) (bool, error) {
		rest := k[len(prefix):]
		return fn(int64(U64(rest)^1<<63), U64(rest[16:]))
	})
}
