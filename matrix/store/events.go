package store

// PutEvent stores an event at pos and indexes its ID and its place in the room timeline.
func (t *Txn) PutEvent(pos uint64, rec *EventRecord) error {
	if err := t.setJSON(eventKey(pos), rec); err != nil {
		return err
	}
	if err := t.set(eventIDKey(rec.ID), be64(pos)); err != nil {
		return err
	}
	if Hidden(rec.Flags) || rec.Flags&FlagBackfilled != 0 {
		return nil
	}
	return t.set(timelineKey(rec.Room, pos), nil)
}

// ReplaceEvent overwrites the record at pos (redaction) without touching indexes.
func (t *Txn) ReplaceEvent(pos uint64, rec *EventRecord) error {
	return t.setJSON(eventKey(pos), rec)
}

// Event loads the event at pos.
func (t *Txn) Event(pos uint64) (*EventRecord, error) {
	rec, err := getJSON[EventRecord](t, eventKey(pos))
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// EventPos finds the stream position of an event ID.
func (t *Txn) EventPos(eventID string) (uint64, error) {
	b, err := t.get(eventIDKey(eventID))
	if err != nil {
		return 0, err
	}
	return U64(b), nil
}

// Timeline walks a room's timeline from pos. Forwards it starts at from (inclusive); backwards it
// starts just below from (exclusive), matching pagination tokens that name a boundary.
// fn returns false to stop.
func (t *Txn) Timeline(room, from uint64, backwards bool, fn func(pos uint64) (bool, error)) error {
	prefix := timelinePrefix(room)
	start := timelineKey(room, from)
	if backwards {
		if from == 0 {
			return nil
		}
		start = timelineKey(room, from-1)
	}
	return t.scan(prefix, start, backwards, false, func(k, _ []byte) (bool, error) {
		return fn(U64(k[9:]))
	})
}
