package store

import (
	"bytes"
	"errors"
	"fmt"
)

// Outbound federation queues (matrix/federation/sender). Each destination server has a queue of
// entries in send order. A PDU going to many servers is stored once under fqp with a count of
// the queue entries that still reference it; the last entry to go deletes it. An EDU is small
// and usually differs per destination, so it is kept inline in its entry.

// Entry kinds (first byte of an fqe value).
const (
	fedEntryPDU byte = 'p' // followed by the 8-byte PDU NID
	fedEntryEDU byte = 'e' // followed by the EDU JSON
)

// FedEntry is one queued item for a destination.
type FedEntry struct {
	Seq  uint64 // position in the destination's queue (increasing in enqueue order)
	PDU  bool   // Body is a PDU (else an EDU object {"edu_type", "content"})
	Body []byte
}

// FedDestRecord is the persisted state of one destination: the transaction being sent, so a
// retry after a failure or a restart reuses its ID with the same entries.
type FedDestRecord struct {
	TxnID   string   `json:"i"`
	TS      int64    `json:"ts"` // origin_server_ts of the transaction
	Entries []uint64 `json:"e"`  // queue sequence numbers, in order
}

// ErrBadDestination is returned for a destination name that cannot be a key component.
var ErrBadDestination = errors.New("store: destination name is empty or contains a NUL byte")

func checkDest(dest string) error {
	if dest == "" || bytes.IndexByte([]byte(dest), 0) >= 0 {
		return ErrBadDestination
	}
	return nil
}

// PutFedPDU stores a PDU body shared by refs queue entries and returns its NID.
func (t *Txn) PutFedPDU(body []byte, refs uint64) (uint64, error) {
	nid, err := t.NextNID(seqFedPDU)
	if err != nil {
		return 0, err
	}
	v := make([]byte, 0, 8+len(body))
	v = append(append(v, be64(refs)...), body...)
	return nid, t.set(fedPDUKey(nid), v)
}

// AppendFedPDU queues a reference to a stored PDU for dest and returns the entry's sequence.
func (t *Txn) AppendFedPDU(dest string, pduNID uint64) (uint64, error) {
	return t.appendFedEntry(dest, append([]byte{fedEntryPDU}, be64(pduNID)...))
}

// AppendFedEDU queues an EDU object for dest and returns the entry's sequence.
func (t *Txn) AppendFedEDU(dest string, edu []byte) (uint64, error) {
	return t.appendFedEntry(dest, append([]byte{fedEntryEDU}, edu...))
}

func (t *Txn) appendFedEntry(dest string, v []byte) (uint64, error) {
	if err := checkDest(dest); err != nil {
		return 0, err
	}
	seq, err := t.NextNID(seqFedEntry)
	if err != nil {
		return 0, err
	}
	return seq, t.set(fedEntryKey(dest, seq), v)
}

// FedEntries calls fn with dest's entries in queue order until fn returns false.
func (t *Txn) FedEntries(dest string, fn func(e FedEntry) (bool, error)) error {
	if err := checkDest(dest); err != nil {
		return err
	}
	prefix := fedEntryPrefix(dest)
	return t.scan(prefix, nil, false, true, func(k, v []byte) (bool, error) {
		e, err := t.decodeFedEntry(U64(k[len(prefix):]), v)
		if err != nil {
			return false, fmt.Errorf("queue of %s: %w", dest, err)
		}
		return fn(e)
	})
}

// FedEntry reads one entry of dest's queue.
func (t *Txn) FedEntry(dest string, seq uint64) (FedEntry, error) {
	if err := checkDest(dest); err != nil {
		return FedEntry{}, err
	}
	v, err := t.get(fedEntryKey(dest, seq))
	if err != nil {
		return FedEntry{}, err
	}
	return t.decodeFedEntry(seq, v)
}

func (t *Txn) decodeFedEntry(seq uint64, v []byte) (FedEntry, error) {
	if len(v) == 0 {
		return FedEntry{}, fmt.Errorf("store: empty queue entry %d", seq)
	}
	switch v[0] {
	case fedEntryEDU:
		return FedEntry{Seq: seq, Body: v[1:]}, nil
	case fedEntryPDU:
		if len(v) != 9 {
			return FedEntry{}, fmt.Errorf("store: queue entry %d: bad PDU reference", seq)
		}
		body, err := t.get(fedPDUKey(U64(v[1:])))
		if err != nil {
			return FedEntry{}, fmt.Errorf("store: queue entry %d: PDU %d: %w", seq, U64(v[1:]), err)
		}
		return FedEntry{Seq: seq, PDU: true, Body: body[8:]}, nil
	}
	return FedEntry{}, fmt.Errorf("store: queue entry %d: unknown kind %q", seq, v[0])
}

// DeleteFedEntry removes a delivered entry; a PDU body goes with its last reference.
func (t *Txn) DeleteFedEntry(dest string, seq uint64) error {
	if err := checkDest(dest); err != nil {
		return err
	}
	k := fedEntryKey(dest, seq)
	v, err := t.get(k)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := t.del(k); err != nil {
		return err
	}
	if len(v) != 9 || v[0] != fedEntryPDU {
		return nil
	}
	pk := fedPDUKey(U64(v[1:]))
	body, err := t.get(pk)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	refs := U64(body)
	if refs <= 1 {
		return t.del(pk)
	}
	nb := make([]byte, len(body))
	copy(nb, body)
	copy(nb, be64(refs-1))
	return t.set(pk, nb)
}

// FedQueueLen counts dest's queued entries.
func (t *Txn) FedQueueLen(dest string) (int, error) {
	if err := checkDest(dest); err != nil {
		return 0, err
	}
	n := 0
	err := t.scan(fedEntryPrefix(dest), nil, false, false, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// FedQueuedDestinations lists the destinations with at least one queued entry, with the number
// of entries each holds. It reads keys only.
func (t *Txn) FedQueuedDestinations() (map[string]int, error) {
	out := map[string]int{}
	err := t.scan([]byte{pFedEntry}, nil, false, false, func(k, _ []byte) (bool, error) {
		if len(k) < 1+1+8 {
			return false, fmt.Errorf("store: short queue key %x", k)
		}
		out[string(k[1:len(k)-9])]++
		return true, nil
	})
	return out, err
}

// FedDest reads dest's in-flight transaction; ErrNotFound when there is none.
func (t *Txn) FedDest(dest string) (*FedDestRecord, error) {
	if err := checkDest(dest); err != nil {
		return nil, err
	}
	r, err := getJSON[FedDestRecord](t, fedDestKey(dest))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// PutFedDest records dest's in-flight transaction.
func (t *Txn) PutFedDest(dest string, r *FedDestRecord) error {
	if err := checkDest(dest); err != nil {
		return err
	}
	return t.setJSON(fedDestKey(dest), r)
}

// DeleteFedDest forgets dest's in-flight transaction (after it was answered).
func (t *Txn) DeleteFedDest(dest string) error {
	if err := checkDest(dest); err != nil {
		return err
	}
	return t.del(fedDestKey(dest))
}

// NextFedDeviceListID advances the per-user m.device_list_update stream: it returns the ID the
// previous update carried (0 if none) and the ID for the next one.
func (t *Txn) NextFedDeviceListID(user string) (prev, next uint64, err error) {
	k := fedDevSeqKey(user)
	v, err := t.get(k)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return 0, 0, err
	default:
		prev = U64(v)
	}
	next = prev + 1
	return prev, next, t.set(k, be64(next))
}

// FedDeviceListID is the ID the user's latest m.device_list_update carried (0 if none): the
// stream_id of a /user/devices answer, so receivers can chain later updates onto it.
func (t *Txn) FedDeviceListID(user string) (uint64, error) {
	v, err := t.get(fedDevSeqKey(user))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return U64(v), nil
}
