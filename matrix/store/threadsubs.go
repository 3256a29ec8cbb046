package store

// Thread subscriptions (matrix/threadsubs, MSC4306). Prefixes 0x98-0x99 (listed in keys.go).
const (
	pThreadSub       byte = 0x98 // tsub  | user 0x00 <room nid> <root event id> -> ThreadSubRecord
	pThreadSubStream byte = 0x99 // tsubs | user 0x00 <pos>                      -> <room nid> <root event id>
)

func threadSubKey(user string, room uint64, root string) []byte {
	return key(pThreadSub, str0(user), be64(room), []byte(root))
}
func threadSubStreamKey(user string, pos uint64) []byte {
	return key(pThreadSubStream, str0(user), be64(pos))
}
func threadSubStreamPrefix(user string) []byte { return key(pThreadSubStream, str0(user)) }

// KindThreadSub marks a stream position written by a thread subscription change.
const KindThreadSub byte = 't'

// ThreadSubRecord is one user's subscription state for one thread. Pos is the stream position
// of its last change (the sliding sync bump_stamp). An unsubscription is kept (Unsubscribed)
// with UnsubscribedAt, the stream position at that moment: an automatic subscription caused by
// an event at or before it is refused, so a client catching up does not undo the user's choice.
type ThreadSubRecord struct {
	Pos            uint64 `json:"pos"`
	Automatic      bool   `json:"automatic,omitempty"`
	Unsubscribed   bool   `json:"unsubscribed,omitempty"`
	UnsubscribedAt uint64 `json:"unsubscribed_at,omitempty"`
}

// ThreadSub loads a user's record for a thread.
func (t *Txn) ThreadSub(user string, room uint64, root string) (ThreadSubRecord, error) {
	return getJSON[ThreadSubRecord](t, threadSubKey(user, room, root))
}

// PutThreadSub stores a record at a new stream position (set in rec.Pos, returned) and moves
// the thread's entry in the user's change stream there.
func (t *Txn) PutThreadSub(user string, room uint64, root string, rec ThreadSubRecord) (uint64, error) {
	k := threadSubKey(user, room, root)
	if old, err := getJSON[ThreadSubRecord](t, k); err == nil {
		if err := t.del(threadSubStreamKey(user, old.Pos)); err != nil {
			return 0, err
		}
	}
	pos, err := t.AllocPos(KindThreadSub)
	if err != nil {
		return 0, err
	}
	rec.Pos = pos
	if err := t.setJSON(k, rec); err != nil {
		return 0, err
	}
	return pos, t.set(threadSubStreamKey(user, pos), append(be64(room), root...))
}

// ThreadSubChange is one entry of a user's thread subscription change stream.
type ThreadSubChange struct {
	Pos  uint64
	Room uint64
	Root string
}

// ThreadSubsSince lists the threads whose subscription changed in (since, upto], newest first,
// at most limit (0: no limit).
func (t *Txn) ThreadSubsSince(user string, since, upto uint64, limit int) ([]ThreadSubChange, error) {
	var out []ThreadSubChange
	p := threadSubStreamPrefix(user)
	err := t.scan(p, threadSubStreamKey(user, upto), true, true, func(k, v []byte) (bool, error) {
		pos := U64(k[len(p):])
		if pos <= since {
			return false, nil
		}
		if pos > upto {
			return true, nil
		}
		out = append(out, ThreadSubChange{Pos: pos, Room: U64(v), Root: string(v[8:])})
		return limit <= 0 || len(out) < limit, nil
	})
	return out, err
}
