package federation

import (
	"context"
	"encoding/json"
	"fmt"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// joinImportBatch is how many verified events are stored together: one StoreOutliers call
// (and so a few Badger transactions) per batch.
const joinImportBatch = 256

// joinImport verifies and stores the PDUs of a streamed send_join answer in batches as they
// arrive. An event goes into the current batch once every auth event it names is stored or
// ahead of it in the batch, so each batch is in auth order and every auth check sees the
// events it needs. An event that arrives before its auth events (servers usually send "state"
// before "auth_chain") waits, as its verified JSON only, until they come; what still waits at
// the end is stored in one last pass that orders it by itself (and rejects what lacks auth
// events, as a whole-answer import would). Of the state, only the event IDs are kept.
type joinImport struct {
	s      *Service
	ctx    context.Context
	roomID id.RoomID
	rv     id.RoomVersion
	getKey pdu.GetKeyFunc

	// ready holds the events stored or in the current batch; seen also those waiting.
	ready, seen map[id.EventID]struct{}
	batch       []rooms.Remote
	waiting     []waitingPDU
	stateIDs    []id.EventID

	stats joinImportStats
}

// waitingPDU is a verified event whose auth events have not arrived yet.
type waitingPDU struct {
	id   id.EventID
	auth []id.EventID
	json []byte
}

// joinImportStats counts what an import did, for the log.
type joinImportStats struct {
	Received, Dropped, Duplicates, Waited, Stored, Batches, MaxWaiting int
}

func (s *Service) newJoinImport(ctx context.Context, roomID id.RoomID, rv id.RoomVersion) *joinImport {
	return &joinImport{
		s: s, ctx: ctx, roomID: roomID, rv: rv, getKey: s.keys.GetKey(ctx),
		ready: map[id.EventID]struct{}{}, seen: map[id.EventID]struct{}{},
	}
}

// PDU verifies one event of the answer and queues it for storage (sendJoinHandler).
func (j *joinImport) PDU(section string, raw json.RawMessage) error {
	if err := j.ctx.Err(); err != nil {
		return err
	}
	j.stats.Received++
	ev, err := j.s.parse(j.ctx, j.rv, raw)
	if err != nil {
		// As for any list of remote events: a bad one is dropped, not the whole join.
		j.stats.Dropped++
		j.s.log.Info("dropped remote event", "section", section, "err", err)
		return nil
	}
	if section == sectionState && ev.PDU.StateKey != nil {
		j.stateIDs = append(j.stateIDs, ev.ID)
	}
	if _, dup := j.seen[ev.ID]; dup {
		j.stats.Duplicates++ // state events are usually in the auth chain as well
		return nil
	}
	j.seen[ev.ID] = struct{}{}
	if !j.authReady(ev.PDU.AuthEvents) {
		j.stats.Waited++
		j.waiting = append(j.waiting, waitingPDU{id: ev.ID, auth: ev.PDU.AuthEvents, json: ev.JSON})
		j.stats.MaxWaiting = max(j.stats.MaxWaiting, len(j.waiting))
		return nil
	}
	return j.add(ev)
}

func (j *joinImport) authReady(auth []id.EventID) bool {
	for _, a := range auth {
		if _, ok := j.ready[a]; !ok {
			return false
		}
	}
	return true
}

// add puts a ready event into the batch, storing the batch when full.
func (j *joinImport) add(ev rooms.Remote) error {
	j.ready[ev.ID] = struct{}{}
	j.batch = append(j.batch, ev)
	if len(j.batch) >= joinImportBatch {
		return j.flush()
	}
	return nil
}

// flush stores the batch, then moves waiting events whose auth events are now ready into the
// next one.
func (j *joinImport) flush() error {
	if len(j.batch) == 0 {
		return nil
	}
	batch := j.batch
	j.batch = nil
	if err := j.s.rooms.StoreOutliers(j.ctx, j.roomID, j.rv, batch, j.getKey); err != nil {
		return err
	}
	j.stats.Stored += len(batch)
	j.stats.Batches++
	return j.release()
}

// release moves waiting events that have become ready into the batch, until none does.
func (j *joinImport) release() error {
	for moved := true; moved; {
		moved = false
		kept := j.waiting[:0]
		var ready []waitingPDU
		for _, w := range j.waiting {
			if j.authReady(w.auth) {
				ready = append(ready, w)
			} else {
				kept = append(kept, w)
			}
		}
		// Clear the tail so that released JSON can be collected.
		clear(j.waiting[len(kept):])
		j.waiting = kept
		for _, w := range ready {
			ev, err := remoteFromVerified(w)
			if err != nil {
				return err
			}
			moved = true
			if err := j.add(ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// finish stores what is left: the last batch, then the events whose auth events never came.
func (j *joinImport) finish() error {
	// Each flush may release waiting events into a new batch.
	for len(j.batch) > 0 {
		if err := j.flush(); err != nil {
			return err
		}
	}
	if len(j.waiting) == 0 {
		return nil
	}
	rest := make([]rooms.Remote, 0, len(j.waiting))
	for _, w := range j.waiting {
		ev, err := remoteFromVerified(w)
		if err != nil {
			return err
		}
		rest = append(rest, ev)
	}
	j.waiting = nil
	if err := j.s.rooms.StoreOutliers(j.ctx, j.roomID, j.rv, rest, j.getKey); err != nil {
		return err
	}
	j.stats.Stored += len(rest)
	j.stats.Batches++
	return nil
}

// remoteFromVerified decodes an event that was verified when it arrived.
func remoteFromVerified(w waitingPDU) (rooms.Remote, error) {
	p, err := events.Parse(w.json)
	if err != nil {
		return rooms.Remote{}, fmt.Errorf("decode verified event %s: %w", w.id, err)
	}
	p.InternalMeta.EventID = w.id
	return rooms.Remote{ID: w.id, PDU: p, JSON: w.json}, nil
}
