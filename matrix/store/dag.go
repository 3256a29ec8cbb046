package store

// PutBackfill places a backfilled event at seq in its room's backfill order.
func (t *Txn) PutBackfill(room, seq, pos uint64) error {
	return t.set(backfillKey(room, seq), be64(pos))
}

// Backfilled walks a room's backfill order from seq: ascending (into the past) or descending
// (towards the timeline). fn gets each sequence and event position and returns false to stop.
func (t *Txn) Backfilled(room, from uint64, descending bool, fn func(seq, pos uint64) (bool, error)) error {
	prefix := backfillPrefix(room)
	return t.scan(prefix, backfillKey(room, from), descending, true, func(k, v []byte) (bool, error) {
		return fn(U64(k[9:]), U64(v))
	})
}

// FirstTimeline returns the position of a room's oldest timeline event (0 when none).
func (t *Txn) FirstTimeline(room uint64) (uint64, error) {
	var first uint64
	err := t.scan(timelinePrefix(room), nil, false, false, func(k, _ []byte) (bool, error) {
		first = U64(k[9:])
		return false, nil
	})
	return first, err
}

// FanoutPos is the stream position up to which local events were handed to the federation
// queues (0 when never set).
func (t *Txn) FanoutPos() (uint64, error) {
	b, err := t.get(metaKey("fed_fanout"))
	if err == ErrNotFound {
		return 0, nil
	}
	return U64(b), err
}

// SetFanoutPos records the federation fan-out position.
func (t *Txn) SetFanoutPos(pos uint64) error { return t.set(metaKey("fed_fanout"), be64(pos)) }
