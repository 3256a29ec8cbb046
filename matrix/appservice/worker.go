package appservice

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

const (
	maxTxnEvents  = 100  // events per transaction
	persistEvery  = 1000 // positions scanned without a delivery before the position is saved anyway
	maxScanPerRun = 5000 // positions read per pass, so a long backlog does not hold a read txn open
)

// worker delivers one service's transactions in order.
type worker struct {
	s    *Service
	as   *AppService
	wake chan struct{}

	pos       uint64 // last position handled (delivered or skipped)
	persisted uint64 // last position written to the store
	txnID     uint64 // next transaction ID
}

func (w *worker) run() {
	defer w.s.wg.Done()
	log := w.s.log.With("appservice", w.as.ID())
	if err := w.load(); err != nil {
		log.Error("appservice state", "err", err)
		return
	}
	backoff := time.Duration(0)
	for {
		more, err := w.step()
		var wait <-chan time.Time
		switch {
		case err != nil:
			backoff = min(max(backoff*2, w.s.MinBackoff), w.s.MaxBackoff)
			log.Warn("appservice transaction failed; retrying", "err", err, "in", backoff)
			wait = time.After(backoff)
		case more:
			backoff = 0
			continue
		default:
			backoff = 0
		}
		select {
		case <-w.s.stop:
			w.save()
			return
		case <-w.wake:
			if wait != nil { // a failing service is not hammered by every new event
				select {
				case <-w.s.stop:
					return
				case <-wait:
				}
			}
		case <-wait:
		}
	}
}

// load reads the persisted position; a new service starts at the current end of the stream.
func (w *worker) load() error {
	return w.s.st.Update(func(txn *store.Txn) error {
		pos, err := txn.AppServiceState(w.as.ID(), posName)
		if err != nil {
			return err
		}
		if w.txnID, err = txn.AppServiceState(w.as.ID(), txnName); err != nil {
			return err
		}
		if pos == 0 {
			pos = w.s.st.Stream().Watermark()
			if err := txn.SetAppServiceState(w.as.ID(), posName, pos); err != nil {
				return err
			}
		}
		w.pos, w.persisted = pos, pos
		return nil
	})
}

func (w *worker) save() {
	if w.pos == w.persisted {
		return
	}
	if err := w.s.st.Update(func(txn *store.Txn) error { return txn.SetAppServiceState(w.as.ID(), posName, w.pos) }); err == nil {
		w.persisted = w.pos
	}
}

// step sends at most one transaction; more reports that the backlog is not yet drained.
func (w *worker) step() (more bool, err error) {
	wm := w.s.st.Stream().Watermark()
	if w.pos >= wm {
		return false, nil
	}
	var evs []*events.ClientEvent
	last := w.pos
	now := time.Now().UnixMilli()
	err = w.s.st.View(func(txn *store.Txn) error {
		in := interest{txn: txn, as: w.as, rooms: map[uint64]bool{}}
		scanned := 0
		return txn.EventsFrom(w.pos+1, func(pos uint64, rec *store.EventRecord) (bool, error) {
			if pos > wm || scanned >= maxScanPerRun || len(evs) >= maxTxnEvents {
				return false, nil
			}
			scanned++
			last = pos
			if store.Hidden(rec.Flags) {
				return true, nil
			}
			ev, err := rooms.LoadEvent(txn, pos, "")
			if err != nil {
				return false, err
			}
			ok, err := in.wants(ev)
			if err != nil || !ok {
				return err == nil, err
			}
			evs = append(evs, ev.Client(now))
			return true, nil
		})
	})
	if err != nil {
		return false, err
	}
	if last == w.pos { // nothing stored between pos and the watermark (other kinds of position)
		last = wm
	}
	if len(evs) == 0 {
		w.pos = last
		if w.pos-w.persisted >= persistEvery {
			w.save()
		}
		return w.pos < wm, nil
	}
	txnID := w.txnID
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, body, err := w.s.do(ctx, w.as, http.MethodPut, "/_matrix/app/v1/transactions/"+url.PathEscape(itoa(txnID)), map[string]any{"events": evs})
	if err != nil {
		return false, err
	}
	if status < 200 || status > 299 {
		return false, fmt.Errorf("transaction %d: status %d: %.200s", txnID, status, body)
	}
	if err := w.s.st.Update(func(txn *store.Txn) error {
		if err := txn.SetAppServiceState(w.as.ID(), posName, last); err != nil {
			return err
		}
		return txn.SetAppServiceState(w.as.ID(), txnName, txnID+1)
	}); err != nil {
		return false, err
	}
	w.pos, w.persisted, w.txnID = last, last, txnID+1
	return w.pos < wm, nil
}

// interest decides whether a service wants an event: its sender or state key is in the user
// namespaces, its room is in the room namespaces or has an alias in the alias namespaces, or a
// user of the namespaces is joined to the room. Per-room answers are cached for one pass.
type interest struct {
	txn   *store.Txn
	as    *AppService
	rooms map[uint64]bool
}

func (in *interest) wants(ev *rooms.Event) (bool, error) {
	if in.as.OwnsUser(ev.Lite.Sender) || (ev.Lite.StateKey != nil && ev.Lite.Type == "m.room.member" && in.as.OwnsUser(*ev.Lite.StateKey)) {
		return true, nil
	}
	room := ev.Rec.Room
	if v, ok := in.rooms[room]; ok {
		return v, nil
	}
	v, err := in.roomWanted(room, ev.RoomID)
	in.rooms[room] = v
	return v, err
}

func (in *interest) roomWanted(room uint64, roomID string) (bool, error) {
	if in.as.OwnsRoom(roomID) {
		return true, nil
	}
	aliases, err := in.txn.RoomAliases(room)
	if err != nil {
		return false, err
	}
	for _, a := range aliases {
		if in.as.OwnsAlias(a) {
			return true, nil
		}
	}
	found := false
	err = in.txn.AllCurrentState(room, func(sk, pos uint64) (bool, error) {
		typ, key, err := in.txn.StateKeyOf(sk)
		if err != nil || typ != "m.room.member" || !in.as.OwnsUser(key) {
			return err == nil, err
		}
		rec, err := in.txn.Event(pos)
		if err != nil {
			return false, err
		}
		var m struct {
			Content struct {
				Membership string `json:"membership"`
			} `json:"content"`
		}
		_ = json.Unmarshal(rec.PDU, &m)
		if m.Content.Membership == "join" {
			found = true
			return false, nil
		}
		return true, nil
	})
	return found, err
}
