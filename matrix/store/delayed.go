package store

// Accessors of delayed events (matrix/delayed, MSC4140; prefixes 0x90-0x92 in keys.go). The
// record is opaque JSON owned by matrix/delayed: the store keeps it and the two indexes (by
// owner, by transaction) consistent, nothing more.

// DelayedEvent returns a scheduled delayed event's record (nil, ErrNotFound when absent).
func (t *Txn) DelayedEvent(delayID string) ([]byte, error) { return t.get(delayedKey(delayID)) }

// PutDelayedEvent writes a scheduled delayed event owned by user.
func (t *Txn) PutDelayedEvent(user, delayID string, rec []byte) error {
	if err := t.set(delayedKey(delayID), rec); err != nil {
		return err
	}
	return t.set(delayedUserKey(user, delayID), nil)
}

// DeleteDelayedEvent removes a delayed event (sent or cancelled) and its owner index entry.
// Transaction records are kept, so that a retried PUT still answers with the same delay_id.
func (t *Txn) DeleteDelayedEvent(user, delayID string) error {
	if err := t.del(delayedKey(delayID)); err != nil {
		return err
	}
	return t.del(delayedUserKey(user, delayID))
}

// DelayedEventIDsOf lists the delay IDs of user's scheduled delayed events.
func (t *Txn) DelayedEventIDsOf(user string) ([]string, error) {
	prefix := delayedUserPrefix(user)
	var out []string
	err := t.scan(prefix, nil, false, false, func(k, _ []byte) (bool, error) {
		out = append(out, string(k[len(prefix):]))
		return true, nil
	})
	return out, err
}

// EachDelayedEvent calls fn with every scheduled delayed event (at start-up, to arm timers).
func (t *Txn) EachDelayedEvent(fn func(delayID string, rec []byte) error) error {
	return t.scan([]byte{pDelayed}, nil, false, true, func(k, v []byte) (bool, error) {
		return true, fn(string(k[1:]), v)
	})
}

// DelayedTxn returns the delay_id a transaction scheduled ("", ErrNotFound when none).
func (t *Txn) DelayedTxn(user, device, scope string) (string, error) {
	v, err := t.get(delayedTxnKey(user, device, scope))
	return string(v), err
}

// SetDelayedTxn records the delay_id a transaction scheduled.
func (t *Txn) SetDelayedTxn(user, device, scope, delayID string) error {
	return t.set(delayedTxnKey(user, device, scope), []byte(delayID))
}
