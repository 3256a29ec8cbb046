package rooms

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/ignore"
	"github.com/hearth-home/hearth/matrix/store"
)

// Bundled aggregations (spec: "Aggregations of child events", v1.7+ rules): unsigned
// ["m.relations"] of a served event carries
//
//   - m.replace: the most recent valid replacement event, whole (latest origin_server_ts, then
//     largest event ID); never for a redacted original. The original's content is left as it
//     is: servers no longer apply edits.
//   - m.thread: latest_event (rendered with its own aggregations), count, and
//     current_user_participated, for thread roots.
//   - m.reference: {chunk: [{event_id}]}.
//
// m.annotation is not aggregated (spec). Children from ignored users and children the user
// may not see are left out; state events get no aggregations.

// Bounds on the work one event's aggregation may do.
const (
	bundleScanMax     = 200 // children read per rel_type
	bundleChunkMax    = 100 // m.reference entries
	bundleNestedDepth = 1   // latest_event gets aggregations, its children do not
)

// Aggregator bundles aggregations for one requester inside one read transaction, caching
// the ignore list and a visibility checker per room.
type Aggregator struct {
	txn     *store.Txn
	who     Requester
	now     int64
	ignored ignore.Set
	viewers map[uint64]*Viewer
}

// NewAggregator prepares bundling for who.
func NewAggregator(txn *store.Txn, who Requester, now int64) (*Aggregator, error) {
	ig, err := ignore.Load(txn, who.User.String())
	if err != nil {
		return nil, err
	}
	return &Aggregator{txn: txn, who: who, now: now, ignored: ig, viewers: map[uint64]*Viewer{}}, nil
}

func (a *Aggregator) visible(e *Event) (bool, error) {
	if a.ignored.Hides(e.Lite.Sender, e.Lite.StateKey != nil) {
		return false, nil
	}
	v, ok := a.viewers[e.Rec.Room]
	if !ok {
		var err error
		if v, err = NewViewer(a.txn, e.Rec.Room, a.who.User.String()); err != nil {
			return false, err
		}
		a.viewers[e.Rec.Room] = v
	}
	return v.CanSee(e)
}

// Bundle sets ce.Unsigned's m.relations for e (ce is e rendered).
func (a *Aggregator) Bundle(e *Event, ce *events.ClientEvent) error { return a.bundle(e, ce, 0) }

func (a *Aggregator) bundle(e *Event, ce *events.ClientEvent, depth int) error {
	if e.Lite.StateKey != nil || store.Hidden(e.Rec.Flags) {
		return nil
	}
	types, err := a.txn.RelationTypes(e.Rec.Room, e.Rec.ID)
	if err != nil || len(types) == 0 {
		return err
	}
	rels := map[string]any{}
	for _, rt := range types {
		var agg any
		switch rt {
		case RelReplace:
			agg, err = a.replacement(e)
		case RelThread:
			agg, err = a.thread(e, depth)
		case RelReference:
			agg, err = a.references(e)
		}
		if err != nil {
			return err
		}
		if agg != nil {
			rels[rt] = agg
		}
	}
	if len(rels) == 0 {
		return nil
	}
	b, err := json.Marshal(rels)
	if err != nil {
		return err
	}
	if ce.Unsigned == nil {
		ce.Unsigned = &events.Unsigned{}
	}
	ce.Unsigned.Relations = b
	return nil
}

// render is a child event in the client format with its own unsigned block.
func (a *Aggregator) render(e *Event) (*events.ClientEvent, error) {
	return clientEvent(a.txn, a.who, e, a.now)
}

// replacement is the m.replace aggregation: the most recent valid edit.
func (a *Aggregator) replacement(orig *Event) (any, error) {
	if orig.Rec.Flags&store.FlagRedacted != 0 {
		return nil, nil // never bundled with a redacted original
	}
	if rel, ok := ParseRelatesTo(orig.Lite.Content); ok && rel.RelType == RelReplace {
		return nil, nil // an edit cannot be edited
	}
	var best *Event
	scanned := 0
	err := a.txn.Relations(orig.Rec.Room, orig.Rec.ID, RelReplace, 0, false, func(r store.Relation) (bool, error) {
		scanned++
		if r.Sender != orig.Lite.Sender || r.Type != orig.Lite.Type {
			return scanned < bundleScanMax, nil
		}
		ed, err := loadEvent(a.txn, r.Pos, orig.RoomID)
		if err != nil {
			return false, err
		}
		if !validReplacement(orig, ed) {
			return scanned < bundleScanMax, nil
		}
		if ok, err := a.visible(ed); err != nil || !ok {
			return err == nil && scanned < bundleScanMax, err
		}
		if best == nil || ed.Lite.OriginServerTS > best.Lite.OriginServerTS ||
			(ed.Lite.OriginServerTS == best.Lite.OriginServerTS && ed.Rec.ID > best.Rec.ID) {
			best = ed
		}
		return scanned < bundleScanMax, nil
	})
	if err != nil || best == nil {
		return nil, err
	}
	return a.render(best)
}

// validReplacement applies the spec's validity rules for replacement events.
func validReplacement(orig, ed *Event) bool {
	if ed.Lite.Sender != orig.Lite.Sender || ed.Lite.Type != orig.Lite.Type ||
		ed.Lite.StateKey != nil || orig.Lite.StateKey != nil || ed.Rec.Flags&store.FlagRedacted != 0 {
		return false
	}
	var c struct {
		NewContent json.RawMessage `json:"m.new_content"`
	}
	if json.Unmarshal(ed.Lite.Content, &c) != nil {
		return false
	}
	nc := bytes.TrimSpace(c.NewContent)
	return len(nc) > 0 && nc[0] == '{'
}

// threadAgg is the m.thread aggregation.
type threadAgg struct {
	LatestEvent             *events.ClientEvent `json:"latest_event"`
	Count                   int64               `json:"count"`
	CurrentUserParticipated bool                `json:"current_user_participated"`
}

func (a *Aggregator) thread(root *Event, depth int) (any, error) {
	rec, err := a.txn.Thread(root.Rec.Room, root.Rec.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	count := rec.Count
	for u := range a.ignored {
		n, err := a.txn.ThreadParticipation(root.Rec.Room, root.Rec.ID, u)
		if err != nil {
			return nil, err
		}
		count -= n
	}
	if count <= 0 {
		return nil, nil
	}
	latest, err := a.latestInThread(root)
	if err != nil || latest == nil {
		return nil, err
	}
	ce, err := a.render(latest)
	if err != nil {
		return nil, err
	}
	if depth < bundleNestedDepth {
		if err := a.bundle(latest, ce, depth+1); err != nil {
			return nil, err
		}
	}
	mine := root.Lite.Sender == a.who.User.String()
	if !mine {
		n, err := a.txn.ThreadParticipation(root.Rec.Room, root.Rec.ID, a.who.User.String())
		if err != nil {
			return nil, err
		}
		mine = n > 0
	}
	return threadAgg{LatestEvent: ce, Count: count, CurrentUserParticipated: mine}, nil
}

// latestInThread is the newest thread event the user may see, from an un-ignored sender.
func (a *Aggregator) latestInThread(root *Event) (*Event, error) {
	var out *Event
	scanned := 0
	err := a.txn.Relations(root.Rec.Room, root.Rec.ID, RelThread, 0, true, func(r store.Relation) (bool, error) {
		scanned++
		if a.ignored.Has(r.Sender) {
			return scanned < bundleScanMax, nil
		}
		ev, err := loadEvent(a.txn, r.Pos, root.RoomID)
		if err != nil {
			return false, err
		}
		ok, err := a.visible(ev)
		if err != nil {
			return false, err
		}
		if ok {
			out = ev
			return false, nil
		}
		return scanned < bundleScanMax, nil
	})
	return out, err
}

type eventRef struct {
	EventID string `json:"event_id"`
}

// references is the m.reference aggregation: the IDs of the referencing events.
func (a *Aggregator) references(parent *Event) (any, error) {
	chunk := []eventRef{}
	scanned := 0
	err := a.txn.Relations(parent.Rec.Room, parent.Rec.ID, RelReference, 0, false, func(r store.Relation) (bool, error) {
		scanned++
		if a.ignored.Has(r.Sender) {
			return scanned < bundleScanMax, nil
		}
		ev, err := loadEvent(a.txn, r.Pos, parent.RoomID)
		if err != nil {
			return false, err
		}
		ok, err := a.visible(ev)
		if err != nil {
			return false, err
		}
		if ok {
			chunk = append(chunk, eventRef{EventID: ev.Rec.ID})
		}
		return len(chunk) < bundleChunkMax && scanned < bundleScanMax, nil
	})
	if err != nil || len(chunk) == 0 {
		return nil, err
	}
	return map[string]any{"chunk": chunk}, nil
}
