package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/hearth-home/hearth/matrix/store"
)

// The corpus is generated the same way as matrix/search's BenchmarkSearchMemory100k: n
// m.room.message events spread over rooms, bodies of 4-19 words drawn from a Zipf
// distribution (s = 1.1) over a vocabulary, fixed seeds so every run indexes the same text.

const benchUser = "@bench:example.org"

// writeCorpus stores n messages in nRooms rooms, the bench user joined to all of them.
func writeCorpus(st *store.Store, n, nRooms, vocab int) error {
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.1, 2, uint64(vocab-1))
	words := make([]string, vocab)
	for i := range words {
		words[i] = fmt.Sprintf("w%x%s", i, []string{"", "a", "er", "ing", "ed"}[i%5])
	}
	var nids []uint64
	if err := st.Update(func(txn *store.Txn) error {
		for i := range nRooms {
			nid, err := txn.CreateRoom(&store.RoomRecord{ID: fmt.Sprintf("!room%d:example.org", i), Version: "11"})
			if err != nil {
				return err
			}
			nids = append(nids, nid)
			if err := txn.SetMembership(benchUser, nid, "join", 1); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("corpus rooms: %w", err)
	}
	const batch = 1000
	for done := 0; done < n; done += batch {
		err := st.Update(func(txn *store.Txn) error {
			for i := done; i < min(done+batch, n); i++ {
				pos, err := txn.AllocPos(store.KindEvent)
				if err != nil {
					return err
				}
				body := ""
				for range 4 + r.IntN(16) {
					body += words[z.Uint64()] + " "
				}
				pdu, err := json.Marshal(map[string]any{"type": "m.room.message", "sender": benchUser, "origin_server_ts": 1700000000000 + int64(i), "depth": i,
					"content": map[string]any{"msgtype": "m.text", "body": body}, "prev_events": []string{}, "auth_events": []string{}})
				if err != nil {
					return err
				}
				room := nids[r.IntN(len(nids))]
				if err := txn.PutEvent(pos, &store.EventRecord{Room: room, ID: fmt.Sprintf("$e%d", pos), PDU: pdu}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("corpus events: %w", err)
		}
	}
	return nil
}

// query is one search of the comparison, as Hearth's benchmark runs it: every term must
// match, each also as a prefix.
type query struct {
	Name   string
	Terms  []string
	Recent bool
}

var queries = []query{
	{Name: "w2 (commonest word, as prefix)", Terms: []string{"w2"}},
	{Name: "w3a (common word, recent first)", Terms: []string{"w3a"}, Recent: true},
	{Name: "w1f4 w3 (two terms)", Terms: []string{"w1f4", "w3"}},
	{Name: "w4e2 (rare word)", Terms: []string{"w4e2"}},
}
