package store

import "errors"

// A gap is history missing between a timeline event flagged FlagGap and the timeline before it:
// a re-join builds on events this server never received, and an incoming event may reference
// more missing events than get_missing_events would fetch. History fetched into a gap (with
// /backfill) is kept in the gap's own order, beside the timeline, as the backfill order is for
// history older than the whole timeline.

// GapRecord is the fill state of one gap.
type GapRecord struct {
	Seq    uint64 `json:"s,omitempty"` // highest fill sequence used
	Closed bool   `json:"c,omitempty"` // the fill reached history known here, or nothing more came
	// Frontier is where the next fetch starts: prev events of the filled history that are not
	// known here yet. Nil before the first fill (the gap event's own prev events).
	Frontier []string `json:"f,omitempty"`
}

// Gap loads the record of the gap before the event at pos; nil when nothing was filled yet.
func (t *Txn) Gap(room, pos uint64) (*GapRecord, error) {
	g, err := getJSON[GapRecord](t, gapKey(room, pos))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// PutGap stores the record of the gap before the event at pos.
func (t *Txn) PutGap(room, pos uint64, g *GapRecord) error {
	return t.setJSON(gapKey(room, pos), g)
}

// PutGapFill places a fetched event at seq in the order of the gap before the event at gap.
func (t *Txn) PutGapFill(room, gap, seq, pos uint64) error {
	return t.set(gapFillKey(room, gap, seq), be64(pos))
}

// GapFilled walks the order of the gap before the event at gap from seq: ascending (into the
// past) or descending (towards the gap event). fn gets each sequence and event position and
// returns false to stop.
func (t *Txn) GapFilled(room, gap, from uint64, descending bool, fn func(seq, pos uint64) (bool, error)) error {
	prefix := gapFillPrefix(room, gap)
	return t.scan(prefix, gapFillKey(room, gap, from), descending, true, func(k, v []byte) (bool, error) {
		return fn(U64(k[len(prefix):]), U64(v))
	})
}
