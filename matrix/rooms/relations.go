package rooms

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Relations between events (spec: "Forming relationships between events"). Every stored event
// whose content carries m.relates_to with a rel_type and an event_id is indexed under its
// parent (store.Relation), threads additionally keep a summary and a per-room list ordered by
// latest activity, and a redaction that takes effect removes the child from the index again
// ("when a child event is redacted then the relationship is broken").

// Relationship types the server treats specially.
const (
	RelAnnotation = "m.annotation"
	RelReference  = "m.reference"
	RelReplace    = "m.replace"
	RelThread     = "m.thread"
)

// RelatesTo is the m.relates_to of an event's content, when it names a parent with a rel_type.
type RelatesTo struct {
	RelType string
	EventID string
	Key     string // m.annotation's key
}

// ParseRelatesTo reads content["m.relates_to"]; ok is false for events without a relationship
// (a rich reply alone has no rel_type) or with one that does not match the schema.
func ParseRelatesTo(content []byte) (RelatesTo, bool) {
	var c struct {
		RelatesTo struct {
			RelType any `json:"rel_type"`
			EventID any `json:"event_id"`
			Key     any `json:"key"`
		} `json:"m.relates_to"`
	}
	if json.Unmarshal(content, &c) != nil {
		return RelatesTo{}, false
	}
	rt, _ := c.RelatesTo.RelType.(string)
	eid, _ := c.RelatesTo.EventID.(string)
	key, _ := c.RelatesTo.Key.(string)
	if rt == "" || len(eid) < 2 || eid[0] != '$' {
		return RelatesTo{}, false
	}
	return RelatesTo{RelType: rt, EventID: eid, Key: key}, true
}

// errDuplicateAnnotation is the spec's answer to a second identical annotation.
func errDuplicateAnnotation() *merr.Error {
	return &merr.Error{Status: http.StatusBadRequest, Code: "M_DUPLICATE_ANNOTATION", Message: "you have already sent this annotation"}
}

// indexRelations runs inside store() once the event (and the redaction it may carry) is
// written. Local events are checked first: a thread cannot start from an event that itself has
// a relation (400 M_UNKNOWN, spec "Validation of m.thread relationships") and an annotation
// cannot repeat one the sender already made (400 M_DUPLICATE_ANNOTATION).
func (s *Service) indexRelations(txn *store.Txn, r *room, b *events.Built, pos uint64) error {
	if b.PDU.Type == "m.room.redaction" {
		if err := s.unindexRedacted(txn, r, b); err != nil {
			return err
		}
	}
	rel, ok := ParseRelatesTo(b.PDU.Content)
	if !ok {
		return nil
	}
	var parent *store.EventRecord
	ppos, err := txn.EventPos(rel.EventID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Unknown parent: indexed anyway, so the relation counts once the parent arrives.
	case err != nil:
		return err
	default:
		if parent, err = txn.Event(ppos); err != nil {
			return err
		}
		if parent.Room != r.nid {
			return nil // relations across rooms are ignored (spec)
		}
	}
	sender := b.PDU.Sender.String()
	if s.IsLocal(b.PDU.Sender) {
		if err := checkLocalRelation(txn, r.nid, rel, parent, ppos, b.PDU.Type, sender); err != nil {
			return err
		}
	}
	return putRelation(txn, r.nid, rel, pos, b.PDU.Type, sender)
}

// putRelation writes one child into the index and, for m.thread, its thread's summary.
func putRelation(txn *store.Txn, room uint64, rel RelatesTo, pos uint64, typ, sender string) error {
	if err := txn.PutRelation(store.Relation{Room: room, Parent: rel.EventID, RelType: rel.RelType, Pos: pos, Type: typ, Sender: sender}); err != nil {
		return err
	}
	if rel.RelType != RelThread {
		return nil
	}
	old, err := txn.Thread(room, rel.EventID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	rec := store.ThreadRecord{Latest: pos, Count: 1}
	var oldLatest uint64
	if old != nil {
		oldLatest = old.Latest
		rec.Count = old.Count + 1
		rec.Latest = max(old.Latest, pos)
	}
	if err := txn.PutThread(room, rel.EventID, rec, oldLatest); err != nil {
		return err
	}
	return txn.AddThreadParticipation(room, rel.EventID, sender, 1)
}

// relationsIndexFlag marks a store whose events have all been indexed.
const relationsIndexFlag = "relations_index_v1"

// BackfillRelations indexes the relations of events stored before the index existed. It runs
// at start-up, before serving, in batches; a flag records completion, and a crash part-way
// only repeats work (events already indexed are skipped).
func (s *Service) BackfillRelations() error {
	var done bool
	if err := s.st.View(func(txn *store.Txn) error {
		var err error
		done, err = txn.Flag(relationsIndexFlag)
		return err
	}); err != nil || done {
		return err
	}
	const batch = 500
	from := uint64(1)
	for {
		n, last := 0, uint64(0)
		err := s.st.Update(func(txn *store.Txn) error {
			n, last = 0, 0
			return txn.EventsFrom(from, func(pos uint64, rec *store.EventRecord) (bool, error) {
				n++
				last = pos
				if err := backfillOne(txn, pos, rec); err != nil {
					return false, err
				}
				return n < batch, nil
			})
		})
		if err != nil {
			return fmt.Errorf("index relations: %w", err)
		}
		if n < batch {
			break
		}
		from = last + 1
	}
	return s.st.Update(func(txn *store.Txn) error { return txn.SetFlag(relationsIndexFlag) })
}

func backfillOne(txn *store.Txn, pos uint64, rec *store.EventRecord) error {
	if store.Hidden(rec.Flags) || rec.Flags&store.FlagRedacted != 0 {
		return nil
	}
	l, err := events.ParseLite(rec.PDU)
	if err != nil {
		return nil // unreadable events are served by nobody either
	}
	rel, ok := ParseRelatesTo(l.Content)
	if !ok {
		return nil
	}
	if _, err := txn.RelationOf(pos); err == nil {
		return nil // indexed already
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if ppos, err := txn.EventPos(rel.EventID); err == nil {
		parent, err := txn.Event(ppos)
		if err != nil {
			return err
		}
		if parent.Room != rec.Room {
			return nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return putRelation(txn, rec.Room, rel, pos, l.Type, l.Sender)
}

func checkLocalRelation(txn *store.Txn, room uint64, rel RelatesTo, parent *store.EventRecord, ppos uint64, typ, sender string) error {
	switch rel.RelType {
	case RelThread:
		if parent == nil {
			return nil
		}
		if _, err := txn.RelationOf(ppos); err == nil {
			return merr.Unknown("cannot start a thread from an event that has a relation itself")
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// Events the index skipped (a NUL in a string) are judged on their content.
		if l, err := events.ParseLite(parent.PDU); err == nil {
			if _, has := ParseRelatesTo(l.Content); has {
				return merr.Unknown("cannot start a thread from an event that has a relation itself")
			}
		}
	case RelAnnotation:
		if rel.Key == "" {
			return nil
		}
		var dup bool
		err := txn.Relations(room, rel.EventID, RelAnnotation, 0, false, func(o store.Relation) (bool, error) {
			if o.Sender != sender || o.Type != typ {
				return true, nil
			}
			rec, err := txn.Event(o.Pos)
			if err != nil {
				return false, err
			}
			l, err := events.ParseLite(rec.PDU)
			if err != nil {
				return false, err
			}
			if orel, ok := ParseRelatesTo(l.Content); ok && orel.Key == rel.Key {
				dup = true
				return false, nil
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		if dup {
			return errDuplicateAnnotation()
		}
	}
	return nil
}

// unindexRedacted removes the target of a redaction from the index once the redaction has
// taken effect (applyRedaction ran before and decided).
func (s *Service) unindexRedacted(txn *store.Txn, r *room, b *events.Built) error {
	target := ""
	if b.PDU.Redacts != nil {
		target = b.PDU.Redacts.String()
	}
	if target == "" {
		var c struct {
			Redacts string `json:"redacts"`
		}
		_ = json.Unmarshal(b.PDU.Content, &c)
		target = c.Redacts
	}
	tpos, err := txn.EventPos(target)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rec, err := txn.Event(tpos)
	if err != nil {
		return err
	}
	if rec.Room != r.nid || rec.Flags&store.FlagRedacted == 0 || rec.Redacted != b.ID.String() {
		return nil
	}
	rel, err := txn.DeleteRelation(tpos)
	if err != nil || rel == nil || rel.RelType != RelThread {
		return err
	}
	return unthread(txn, rel)
}

// unthread takes a redacted thread event out of its thread's summary.
func unthread(txn *store.Txn, rel *store.Relation) error {
	old, err := txn.Thread(rel.Room, rel.Parent)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := txn.AddThreadParticipation(rel.Room, rel.Parent, rel.Sender, -1); err != nil {
		return err
	}
	rec := store.ThreadRecord{Latest: old.Latest, Count: old.Count - 1}
	if old.Latest == rel.Pos {
		rec.Latest = 0
		err := txn.Relations(rel.Room, rel.Parent, RelThread, 0, true, func(o store.Relation) (bool, error) {
			rec.Latest = o.Pos
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	if rec.Latest == 0 || rec.Count <= 0 {
		return txn.DeleteThread(rel.Room, rel.Parent, old.Latest)
	}
	return txn.PutThread(rel.Room, rel.Parent, rec, old.Latest)
}
