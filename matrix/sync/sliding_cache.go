package sync

import (
	"encoding/json"
	gosync "sync"

	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/store"
)

// Cache sizes: each map is dropped whole when it reaches its size (entries are cheap to
// recompute), which bounds memory without bookkeeping.
const (
	bumpCacheMax    = 16384
	skCacheMax      = 32768
	summaryCacheMax = 2048
	bumpScanMax     = 1000 // events looked at, per room and request, to find the last bump event
)

// bumpTypes are the events that move a room up the list (MSC4186 "proper activity").
var bumpTypes = map[string]bool{
	"m.room.create": true, "m.room.message": true, "m.room.encrypted": true, "m.sticker": true,
	"m.call.invite": true, "m.poll.start": true, "org.matrix.msc3381.poll.start": true,
	"m.beacon_info": true, "org.matrix.msc3672.beacon_info": true,
}

// slidingCache keeps facts about rooms that are shared by every connection: the last bump
// event, the names of state-key NIDs, and member summaries per state snapshot.
type slidingCache struct {
	mu      gosync.Mutex
	bumps   map[uint64]bumpEntry
	sks     map[uint64][2]string
	summary map[uint64]*memberSummary
}

type bumpEntry struct {
	bump    uint64 // position of the newest bump event at or below scanned
	scanned uint64 // position up to which the timeline was looked at
}

// memberSummary is a room's member counts and hero candidates in one state snapshot.
type memberSummary struct {
	snapshot uint64
	joined   int
	invited  int
	heroes   []hero // up to 6 candidates: joined first, then invited, then left
}

// hero is MSC4186's Hero.
type hero struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"displayname,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// stateKeyOf names a state-key NID (immutable, so cached).
func (c *slidingCache) stateKeyOf(txn *store.Txn, nid uint64) (string, string, error) {
	c.mu.Lock()
	v, ok := c.sks[nid]
	c.mu.Unlock()
	if ok {
		return v[0], v[1], nil
	}
	typ, key, err := txn.StateKeyOf(nid)
	if err != nil {
		return "", "", err
	}
	c.mu.Lock()
	if c.sks == nil || len(c.sks) >= skCacheMax {
		c.sks = map[uint64][2]string{}
	}
	c.sks[nid] = [2]string{typ, key}
	c.mu.Unlock()
	return typ, key, nil
}

// bump is the position of the newest bump event of a room at or below upto. When none is
// found within bumpScanMax events, fallback (the user's membership position) stands in.
// The cache entry for a room says "the newest bump at or below scanned is bump" (0: none
// found), so a request only looks at the events that arrived since the last one.
func (c *slidingCache) bump(txn *store.Txn, nid, latest, upto, fallback uint64) (uint64, error) {
	top := min(latest, upto)
	c.mu.Lock()
	e, ok := c.bumps[nid]
	c.mu.Unlock()
	orFallback := func(b uint64) uint64 {
		if b == 0 {
			return fallback
		}
		return b
	}
	lower, keep := uint64(0), true
	switch {
	case ok && e.scanned == top:
		return orFallback(e.bump), nil
	case ok && e.scanned > top:
		if e.bump <= top {
			return orFallback(e.bump), nil // nothing in (bump, scanned], so nothing in (bump, top]
		}
		keep = false // a request with an older watermark: answer without touching the cache
	case ok:
		lower = e.scanned
	}
	found := uint64(0)
	n := 0
	err := txn.Timeline(nid, top+1, true, func(pos uint64) (bool, error) {
		if pos <= lower || n >= bumpScanMax {
			return false, nil
		}
		n++
		rec, err := txn.Event(pos)
		if err != nil {
			return false, err
		}
		if store.Hidden(rec.Flags) {
			return true, nil
		}
		var t struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(rec.PDU, &t) == nil && bumpTypes[t.Type] {
			found = pos
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	if found == 0 && lower != 0 {
		found = e.bump // nothing new: the older bump still stands
	}
	if keep {
		c.mu.Lock()
		if c.bumps == nil || len(c.bumps) >= bumpCacheMax {
			c.bumps = map[uint64]bumpEntry{}
		}
		if cur, ok := c.bumps[nid]; !ok || cur.scanned <= top {
			c.bumps[nid] = bumpEntry{bump: found, scanned: top}
		}
		c.mu.Unlock()
	}
	return orFallback(found), nil
}

// members summarises the member events of a state map (state-key NID -> position).
func (c *slidingCache) members(txn *store.Txn, snapshot uint64, state map[uint64]uint64, roomID string, nid uint64) (*memberSummary, error) {
	c.mu.Lock()
	s, ok := c.summary[nid]
	c.mu.Unlock()
	if ok && s.snapshot == snapshot && snapshot != 0 {
		return s, nil
	}
	s = &memberSummary{snapshot: snapshot}
	type cand struct {
		pos  uint64
		rank int
		h    hero
	}
	var cands []cand
	for sk, pos := range state {
		typ, key, err := c.stateKeyOf(txn, sk)
		if err != nil {
			return nil, err
		}
		if typ != "m.room.member" {
			continue
		}
		ev, err := rooms.LoadEvent(txn, pos, roomID)
		if err != nil {
			return nil, err
		}
		var content struct {
			Membership  string `json:"membership"`
			DisplayName any    `json:"displayname"`
			AvatarURL   any    `json:"avatar_url"`
		}
		_ = json.Unmarshal(ev.Lite.Content, &content)
		rank := 2
		switch content.Membership {
		case "join":
			s.joined++
			rank = 0
		case "invite":
			s.invited++
			rank = 1
		case "leave", "ban":
		default:
			continue
		}
		h := hero{UserID: key}
		h.DisplayName, _ = content.DisplayName.(string)
		h.AvatarURL, _ = content.AvatarURL.(string)
		cands = append(cands, cand{pos: pos, rank: rank, h: h})
	}
	// Keep the six best: by rank, then oldest membership first (stable across requests).
	for i := 0; i < len(cands) && i < 6; i++ {
		best := i
		for j := i + 1; j < len(cands); j++ {
			a, b := cands[j], cands[best]
			if a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos) {
				best = j
			}
		}
		cands[i], cands[best] = cands[best], cands[i]
		s.heroes = append(s.heroes, cands[i].h)
	}
	if snapshot != 0 {
		c.mu.Lock()
		if c.summary == nil || len(c.summary) >= summaryCacheMax {
			c.summary = map[uint64]*memberSummary{}
		}
		c.summary[nid] = s
		c.mu.Unlock()
	}
	return s, nil
}
