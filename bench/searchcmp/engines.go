package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	bq "github.com/blevesearch/bleve/v2/search/query"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/search"
	"github.com/hearth-home/hearth/matrix/store"
)

// engine is one search index under test. Both read the corpus from the same Hearth store,
// since the events live there in the appliance whichever index is used.
type engine interface {
	index() error
	// search runs q and returns the total number of matches; like Hearth's /search it also
	// loads the first page (10 events) from the store.
	search(q query) (int, error)
	diskBytes() int64 // after close
	close() error
}

// badgerEngine is Hearth's own index: postings in the same Badger store (matrix/search).
type badgerEngine struct {
	st  *store.Store
	svc *search.Service
	who rooms.Requester
}

func newBadger(st *store.Store) *badgerEngine {
	return &badgerEngine{st: st, svc: search.New(st, nil), who: rooms.Requester{User: id.UserID(benchUser)}}
}

func (b *badgerEngine) index() error { return b.svc.CatchUp() }

func (b *badgerEngine) search(q query) (int, error) {
	req := &search.RoomEvents{SearchTerm: strings.Join(q.Terms, " ")}
	if q.Recent {
		req.OrderBy = "recent"
	}
	res, err := b.svc.Search(context.Background(), b.who, req, "")
	if err != nil {
		return 0, err
	}
	return res.Count, nil
}

// diskBytes is measured by the caller: the postings live in the events' own store.
func (b *badgerEngine) diskBytes() int64 { return 0 }
func (b *badgerEngine) close() error     { return nil }

// bleveEngine is bleve v2 with its default scorch index on disk, mapped as leanly as the
// comparison allows: body analysed like Hearth's tokenizer (Unicode words, lower-cased),
// nothing stored, no term vectors, no _all field; the room as a keyword and the timestamp as
// a number for "recent" ordering.
type bleveEngine struct {
	st  *store.Store
	dir string
	idx bleve.Index
}

type bleveDoc struct {
	Body string  `json:"body"`
	Room string  `json:"room"`
	TS   float64 `json:"ts"`
}

func newBleve(st *store.Store, dir string) (*bleveEngine, error) {
	im := bleve.NewIndexMapping()
	if err := im.AddCustomAnalyzer("words", map[string]any{"type": custom.Name, "tokenizer": unicode.Name, "token_filters": []string{lowercase.Name}}); err != nil {
		return nil, fmt.Errorf("bleve analyzer: %w", err)
	}
	body := bleve.NewTextFieldMapping()
	body.Analyzer, body.Store, body.IncludeTermVectors, body.IncludeInAll, body.DocValues = "words", false, false, false, false
	room := bleve.NewKeywordFieldMapping()
	room.Store, room.IncludeInAll, room.DocValues = false, false, false
	ts := bleve.NewNumericFieldMapping()
	ts.Store, ts.IncludeInAll = false, false
	dm := bleve.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt("body", body)
	dm.AddFieldMappingsAt("room", room)
	dm.AddFieldMappingsAt("ts", ts)
	im.DefaultMapping = dm
	im.DefaultAnalyzer = "words"
	im.StoreDynamic, im.IndexDynamic, im.DocValuesDynamic = false, false, false
	path := filepath.Join(dir, "bleve")
	idx, err := bleve.New(path, im)
	if err != nil {
		return nil, fmt.Errorf("bleve open: %w", err)
	}
	return &bleveEngine{st: st, dir: path, idx: idx}, nil
}

func (e *bleveEngine) index() error {
	const batchEvents = 1000
	from := uint64(1)
	for {
		batch := e.idx.NewBatch()
		n, last := 0, uint64(0)
		err := e.st.View(func(txn *store.Txn) error {
			return txn.EventsFrom(from, func(pos uint64, rec *store.EventRecord) (bool, error) {
				n++
				last = pos
				var ev struct {
					TS      float64 `json:"origin_server_ts"`
					Content struct {
						Body string `json:"body"`
					} `json:"content"`
				}
				if err := json.Unmarshal(rec.PDU, &ev); err != nil {
					return false, err
				}
				if err := batch.Index(strconv.FormatUint(pos, 10), bleveDoc{Body: ev.Content.Body, Room: strconv.FormatUint(rec.Room, 10), TS: ev.TS}); err != nil {
					return false, err
				}
				return n < batchEvents, nil
			})
		})
		if err != nil {
			return fmt.Errorf("bleve read: %w", err)
		}
		if n == 0 {
			return nil
		}
		if err := e.idx.Batch(batch); err != nil {
			return fmt.Errorf("bleve batch: %w", err)
		}
		from = last + 1
	}
}

func (e *bleveEngine) search(q query) (int, error) {
	var parts []bq.Query
	for _, t := range q.Terms {
		p := bleve.NewPrefixQuery(t)
		p.SetField("body")
		parts = append(parts, p)
	}
	req := bleve.NewSearchRequestOptions(bleve.NewConjunctionQuery(parts...), 10, 0, false)
	if q.Recent {
		req.SortBy([]string{"-ts"})
	}
	res, err := e.idx.Search(req)
	if err != nil {
		return 0, err
	}
	// Load the page's events, as /search renders them.
	err = e.st.View(func(txn *store.Txn) error {
		for _, h := range res.Hits {
			pos, err := strconv.ParseUint(h.ID, 10, 64)
			if err != nil {
				return err
			}
			rec, err := txn.Event(pos)
			if err != nil {
				return err
			}
			var v map[string]any
			if err := json.Unmarshal(rec.PDU, &v); err != nil {
				return err
			}
		}
		return nil
	})
	return int(res.Total), err
}

func (e *bleveEngine) diskBytes() int64 { return store.DirSize(e.dir) }
func (e *bleveEngine) close() error     { return e.idx.Close() }
