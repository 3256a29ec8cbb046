package search

import (
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-home/hearth/appliance/bus"
	"github.com/hearth-home/hearth/matrix/change"
	"github.com/hearth-home/hearth/matrix/store"
)

// Fields an event's text comes from (the request's "keys").
const (
	FieldBody  byte = 1 // content.body of m.room.message
	FieldName  byte = 2 // content.name of m.room.name
	FieldTopic byte = 3 // content.topic of m.room.topic
)

const (
	metaHighWater = "hw"
	batchEvents   = 256 // events per write transaction while catching up
)

// Service owns the index and answers searches.
type Service struct {
	st  *store.Store
	log *slog.Logger

	mu   sync.Mutex // one indexer at a time
	stop chan struct{}
	done chan struct{}
	sub  *bus.Sub[change.Change]
	b    *bus.Bus[change.Change]
	once sync.Once
	hw   atomic.Uint64 // the indexed high-water position, once known
}

// syncLag is how far behind the index may be for a search to wait for it; beyond that (a
// first start over a big store) searches answer from what is indexed so far.
const syncLag = 20_000

// New makes the service; Watch starts the background indexer.
func New(st *store.Store, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, log: log}
}

// Watch subscribes to the bus and indexes new events in the background (and first catches up
// with whatever the store holds beyond the stored high-water position).
func (s *Service) Watch(b *bus.Bus[change.Change]) {
	s.b = b
	s.sub = b.SubscribeQueue(256)
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.run()
}

// Close stops the background indexer (before the store closes).
func (s *Service) Close() {
	s.once.Do(func() {
		if s.stop == nil {
			return
		}
		s.b.Unsubscribe(s.sub)
		close(s.stop)
		<-s.done
	})
}

func (s *Service) run() {
	defer close(s.done)
	t := time.NewTicker(30 * time.Second) // a safety net; the bus normally wakes us
	defer t.Stop()
	for {
		if err := s.CatchUp(); err != nil {
			s.log.Error("search index", "err", err)
		}
		select {
		case <-s.stop:
			return
		case c := <-s.sub.C():
			if c.Kind != change.Event {
				continue
			}
		case <-t.C:
		}
		s.sub.Lagged() // nothing is lost on lag: catching up reads the store
	}
}

// CatchUp indexes every event between the high-water position and the stream watermark.
func (s *Service) CatchUp() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	wm := s.st.Stream().Watermark()
	var hw uint64
	if err := s.st.View(func(txn *store.Txn) (err error) { hw, err = txn.SearchMeta(metaHighWater); return }); err != nil {
		return err
	}
	for hw < wm {
		select {
		case <-s.stop:
			return nil
		default:
		}
		var batch []store.Posting
		next, n := wm, 0
		err := s.st.View(func(txn *store.Txn) error {
			return txn.EventsFrom(hw+1, func(pos uint64, rec *store.EventRecord) (bool, error) {
				if pos > wm {
					return false, nil
				}
				if n == batchEvents {
					next = pos - 1
					return false, nil
				}
				n++
				batch = append(batch, postingsOf(pos, rec)...)
				return true, nil
			})
		})
		if err != nil {
			return err
		}
		if err := s.st.Update(func(txn *store.Txn) error {
			for _, p := range batch {
				if err := txn.PutPosting(p); err != nil {
					return err
				}
			}
			return txn.SetSearchMeta(metaHighWater, next)
		}); err != nil {
			return err
		}
		hw = next
		s.hw.Store(hw)
	}
	s.hw.Store(hw)
	return nil
}

// catchUpForSearch brings the index up to date unless it is far behind.
func (s *Service) catchUpForSearch() error {
	if hw := s.hw.Load(); hw != 0 && s.st.Stream().Watermark()-hw > syncLag {
		return nil
	}
	return s.CatchUp()
}

// postingsOf extracts the searchable text of one event.
func postingsOf(pos uint64, rec *store.EventRecord) []store.Posting {
	if store.Hidden(rec.Flags) || rec.Flags&store.FlagRedacted != 0 {
		return nil
	}
	var ev struct {
		Type     string  `json:"type"`
		StateKey *string `json:"state_key"`
		Content  struct {
			Body  any `json:"body"`
			Name  any `json:"name"`
			Topic any `json:"topic"`
		} `json:"content"`
	}
	if json.Unmarshal(rec.PDU, &ev) != nil {
		return nil
	}
	var text any
	var field byte
	switch {
	case ev.Type == "m.room.message" && ev.StateKey == nil:
		text, field = ev.Content.Body, FieldBody
	case ev.Type == "m.room.name" && ev.StateKey != nil && *ev.StateKey == "":
		text, field = ev.Content.Name, FieldName
	case ev.Type == "m.room.topic" && ev.StateKey != nil && *ev.StateKey == "":
		text, field = ev.Content.Topic, FieldTopic
	}
	str, ok := text.(string)
	if !ok || str == "" {
		return nil
	}
	c := counts(str)
	out := make([]store.Posting, 0, len(c))
	for tok, n := range c {
		out = append(out, store.Posting{Token: tok, Pos: pos, Room: rec.Room, Field: field, Count: n})
	}
	return out
}
