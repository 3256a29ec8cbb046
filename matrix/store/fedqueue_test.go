package store

import (
	"errors"
	"testing"
)

func countPrefix(t *testing.T, s *Store, prefix byte) int {
	t.Helper()
	n := 0
	if err := s.View(func(txn *Txn) error {
		return txn.scan([]byte{prefix}, nil, false, false, func(_, _ []byte) (bool, error) { n++; return true, nil })
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// A PDU queued for three destinations is stored once and removed with its last reference.
func TestFedQueueSharesPDUs(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dests := []string{"a.test", "b.test:8448", "c.test"}
	seqs := map[string][]uint64{}
	pdu := []byte(`{"type":"m.room.message"}`)
	if err := s.Update(func(txn *Txn) error {
		nid, err := txn.PutFedPDU(pdu, uint64(len(dests)))
		if err != nil {
			return err
		}
		for _, d := range dests {
			q, err := txn.AppendFedPDU(d, nid)
			if err != nil {
				return err
			}
			e, err := txn.AppendFedEDU(d, []byte(`{"edu_type":"m.receipt","content":{}}`))
			if err != nil {
				return err
			}
			seqs[d] = []uint64{q, e}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(t, s, pFedPDU); n != 1 {
		t.Fatalf("%d PDU bodies stored, want 1", n)
	}
	var queued map[string]int
	_ = s.View(func(txn *Txn) error { queued, err = txn.FedQueuedDestinations(); return err })
	if len(queued) != 3 || queued["b.test:8448"] != 2 {
		t.Fatalf("queued destinations %v", queued)
	}
	_ = s.View(func(txn *Txn) error {
		var got []FedEntry
		err := txn.FedEntries("c.test", func(e FedEntry) (bool, error) { got = append(got, e); return true, nil })
		if err != nil || len(got) != 2 || !got[0].PDU || string(got[0].Body) != string(pdu) || got[1].PDU || got[0].Seq >= got[1].Seq {
			t.Errorf("entries of c.test: %+v, %v", got, err)
		}
		return nil
	})
	for i, d := range dests {
		if err := s.Update(func(txn *Txn) error {
			for _, q := range seqs[d] {
				if err := txn.DeleteFedEntry(d, q); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := 1
		if i == len(dests)-1 {
			want = 0
		}
		if n := countPrefix(t, s, pFedPDU); n != want {
			t.Errorf("after %d destinations: %d PDU bodies, want %d", i+1, n, want)
		}
		// The survivors still read the body.
		for _, other := range dests[i+1:] {
			_ = s.View(func(txn *Txn) error {
				e, err := txn.FedEntry(other, seqs[other][0])
				if err != nil || string(e.Body) != string(pdu) {
					t.Errorf("%s lost its PDU: %v", other, err)
				}
				return nil
			})
		}
	}
	if n := countPrefix(t, s, pFedEntry); n != 0 {
		t.Errorf("%d entries left", n)
	}
	if err := s.Update(func(txn *Txn) error { _, err := txn.AppendFedEDU("bad\x00name", []byte(`{}`)); return err }); !errors.Is(err, ErrBadDestination) {
		t.Errorf("NUL in destination: %v", err)
	}
}

func TestFedDeviceListIDs(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for want := uint64(1); want <= 3; want++ {
		var prev, next uint64
		if err := s.Update(func(txn *Txn) (err error) { prev, next, err = txn.NextFedDeviceListID("@u:a"); return err }); err != nil {
			t.Fatal(err)
		}
		if next != want || prev != want-1 {
			t.Errorf("got prev %d next %d, want %d %d", prev, next, want-1, want)
		}
	}
}
