package sync

// A parked sliding sync long-poll is woken by every change of the user's rooms and account,
// most of which produce nothing for the connection (events in rooms outside its lists, or in
// no list at all for Element X's encryption connection). Each wake-up builds the response
// again. Built over the whole window (base.upto, watermark], a wake-up would re-read every
// change since the long-poll began (above all the e2ee extension's device-list scan, which
// reads the membership events of every joined room in the window), so a long-poll's cost grew
// with the square of the events it saw and took the CPU from the clients the events were for.
//
// An empty build proves that (base.upto, its upto] holds nothing for this request, so the next
// build of the same long-poll reads only what arrived since: a slidingWake records how far the
// proof goes and for which rooms. The answer is unchanged:
//
//   - rooms are rendered from the connection's base exactly as before (renderRoom reads only
//     rooms whose position moved, and num_live and the stored connState come from the base);
//     connStates stay immutable and nothing here is stored with them;
//   - user-wide streams (to_device, device lists, thread subscriptions) start at the floor:
//     nothing in (since, floor] reached the client, since it would have ended the long-poll.
//     Acknowledging to-device messages up to the floor instead of the since token deletes
//     nothing more: there were none in between;
//   - per-room extensions (account_data, receipts) start at the floor only for rooms the
//     previous build looked at for that extension; a room that came into scope since (a list
//     range that shifted) is read from the base again.
//
// Device lists were an approximation already (keys.DeviceLists: sharing judged on current
// memberships; a room with more than 500 events in the window reports all its members). The
// split keeps the former and avoids the latter: it reads each event once, so a long-poll that
// sits through a busy room no longer reports that room's members as changed just because
// the window grew past the scan cap.

// slidingWake is what the empty builds of one long-poll established: nothing in
// (base.upto, floor] concerns the request, for the user-wide streams and for the rooms named.
type slidingWake struct {
	floor       uint64
	accountData map[uint64]bool // rooms whose account data was read up to floor
	receipts    map[uint64]bool // rooms whose receipts were read up to floor
}

func newSlidingWake() *slidingWake {
	return &slidingWake{accountData: map[uint64]bool{}, receipts: map[uint64]bool{}}
}

// streamSince is where a user-wide stream read starts: since, or the floor when an earlier
// empty build of this long-poll read up to it.
func (sp *slidingPass) streamSince(since uint64) uint64 {
	if sp.wake == nil {
		return since
	}
	return max(since, min(sp.wake.floor, sp.upto))
}

// accountDataSince is where the account_data read starts for the rooms in scope: the floor
// when the previous build covered every one of them, since otherwise (global account data is
// always covered). It records the scope for the next build.
func (sp *slidingPass) accountDataSince(since uint64, scope []*slidingRoomRef) uint64 {
	for _, r := range scope {
		sp.saw.accountData[r.nid] = true
	}
	if sp.wake == nil {
		return since
	}
	for _, r := range scope {
		if !sp.wake.accountData[r.nid] {
			return since
		}
	}
	return sp.streamSince(since)
}

// receiptsSince is where the receipts read of one room starts, recording that it was read.
func (sp *slidingPass) receiptsSince(nid, lower uint64) uint64 {
	sp.saw.receipts[nid] = true
	if sp.wake == nil || !sp.wake.receipts[nid] {
		return lower
	}
	return sp.streamSince(lower)
}
