package rooms

import (
	"errors"

	"github.com/hearth-home/hearth/matrix/store"
)

// contextTokens returns the pagination boundaries just before (older side) and just after an
// event, in the order the event belongs to: stream positions for the timeline, "b<seq>" for
// the backfill order. A jump to date lands on backfilled events (rooms/timestamp_remote.go),
// and /context must then page from there, not from the event's stream position (allocated
// when it was fetched, after the whole timeline). An event found in no order keeps the
// timeline tokens.
func (s *Service) contextTokens(target *Event) (before, after string, err error) {
	before, after = Token(target.Pos-1), Token(target.Pos)
	if target.Rec.Flags&store.FlagBackfilled == 0 {
		return before, after, nil
	}
	found := errors.New("found")
	err = s.st.View(func(txn *store.Txn) error {
		err := txn.Backfilled(target.Rec.Room, 1, false, func(seq, pos uint64) (bool, error) {
			if pos != target.Pos {
				return true, nil
			}
			// b<k> is the boundary between seq k and the older seq k+1.
			before, after = backfillToken(seq), backfillToken(seq-1)
			return false, found
		})
		if errors.Is(err, found) {
			return nil
		}
		return err
	})
	return before, after, err
}
