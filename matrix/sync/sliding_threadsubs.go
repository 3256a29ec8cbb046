package sync

import (
	"encoding/json"

	"github.com/hearth-home/hearth/matrix/merr"
)

// The io.element.msc4308.thread_subscriptions extension (MSC4308, companion of MSC4306): the
// threads whose subscription changed since the connection's last response (all of the user's,
// newest first, up to limit, on a new connection), as subscribed (automatic, bump_stamp) or
// unsubscribed (bump_stamp). The bump_stamp is the change's stream position. Older changes
// beyond the limit are not paged (MSC4308's pagination endpoint is not served).
const threadSubsExt = "io.element.msc4308.thread_subscriptions"

// defaultThreadSubsLimit bounds a first response when the client names no limit.
const defaultThreadSubsLimit = 100

type extThreadSubs struct {
	limit int
}

func (p *parsedSliding) parseThreadSubs() error {
	raw, ok := p.req.Extensions[threadSubsExt]
	if !ok {
		return nil
	}
	var t struct {
		Enabled *bool `json:"enabled"`
		Limit   *int  `json:"limit"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return merr.BadJSON("extensions.%s: %v", threadSubsExt, err)
	}
	p.extSet[threadSubsExt] = true
	if t.Enabled == nil || !*t.Enabled {
		p.ext.threadSubs = nil
		return nil
	}
	limit := defaultThreadSubsLimit
	if t.Limit != nil {
		if *t.Limit < 1 {
			return merr.InvalidParam("extensions.%s.limit must be positive", threadSubsExt)
		}
		limit = *t.Limit
	}
	p.ext.threadSubs = &extThreadSubs{limit: limit}
	return nil
}

func (sp *slidingPass) extThreadSubs(cfg *extThreadSubs) error {
	since := sp.base.upto
	if sp.initial {
		since = 0
	}
	changes, err := sp.txn.ThreadSubsSince(sp.user, sp.streamSince(since), sp.upto, cfg.limit) // sliding_wake.go
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		return nil
	}
	subscribed := map[string]map[string]any{}
	unsubscribed := map[string]map[string]any{}
	for _, c := range changes {
		rec, err := sp.txn.ThreadSub(sp.user, c.Room, c.Root)
		if err != nil {
			continue
		}
		room, err := sp.txn.Room(c.Room)
		if err != nil {
			continue
		}
		into, entry := subscribed, map[string]any{"automatic": rec.Automatic, "bump_stamp": rec.Pos}
		if rec.Unsubscribed {
			into, entry = unsubscribed, map[string]any{"bump_stamp": rec.Pos}
		}
		if into[room.ID] == nil {
			into[room.ID] = map[string]any{}
		}
		into[room.ID][c.Root] = entry
	}
	out := map[string]any{}
	if len(subscribed) > 0 {
		out["subscribed"] = subscribed
	}
	if len(unsubscribed) > 0 {
		out["unsubscribed"] = unsubscribed
	}
	sp.news = true
	sp.resp.Extensions[threadSubsExt] = out
	return nil
}
