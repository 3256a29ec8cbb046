package stateres

import (
	"fmt"

	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
)

// iterativeAuth applies the events in order to state, each one only if the auth rules allow it
// against the auth events selected from state (falling back to the event's own auth_events for
// keys state lacks). state is updated in place.
func (r *resolver) iterativeAuth(state StateMap, order []int32) error {
	if err := r.prefetchAuth(order); err != nil {
		return err
	}
	for _, n := range order {
		if err := r.ctx.Err(); err != nil {
			return fmt.Errorf("stateres: %w", err)
		}
		ev := r.g.event(n)
		ok, err := r.allowed(ev, state)
		if err != nil {
			return err
		}
		if ok {
			state[Key{ev.PDU.Type, *ev.PDU.StateKey}] = ev.ID
		}
	}
	return nil
}

// allowed runs the auth rules on ev against state. A fetch failure is an error of the
// resolution; any rule failure just means "not allowed".
func (r *resolver) allowed(ev *Event, state StateMap) (bool, error) {
	own := map[pdu.StateKey]*Event{}
	for _, a := range ev.PDU.AuthEvents {
		ae, err := r.g.eventByID(a)
		if err != nil {
			return false, err
		}
		if ae == nil || ae.Rejected || ae.PDU.StateKey == nil {
			continue
		}
		k := pdu.StateKey{Type: ae.PDU.Type, StateKey: *ae.PDU.StateKey}
		if _, dup := own[k]; !dup {
			own[k] = ae
		}
	}
	selection := ev.PDU.AuthEventSelection(events.Base(r.rv))
	authEvents := make([]*pdu.PDU, 0, len(selection))
	for _, k := range selection {
		var chosen *Event
		if sid, ok := state[Key{k.Type, k.StateKey}]; ok {
			se, err := r.g.eventByID(sid)
			if err != nil {
				return false, err
			}
			if se != nil && !se.Rejected {
				chosen = se
			}
		}
		if chosen == nil {
			chosen = own[k]
		}
		if chosen != nil {
			authEvents = append(authEvents, chosen.PDU)
		}
	}
	var fetchErr error
	getEvents := func(ids []id.EventID) ([]*pdu.PDU, error) {
		// Only asked for the v12 create event, named by the room ID.
		out := make([]*pdu.PDU, 0, len(ids))
		for _, eid := range ids {
			e, err := r.g.eventByID(eid)
			if err != nil {
				fetchErr = err
				return nil, err
			}
			if e == nil {
				continue
			}
			p := e.PDU
			if e.Rejected && !p.InternalMeta.Rejected {
				cp := *p
				cp.InternalMeta.Rejected = true
				p = &cp
			}
			out = append(out, p)
		}
		return out, nil
	}
	err := authorize(r.rv, ev.PDU, authEvents, getEvents, r.keyFunc())
	if fetchErr != nil {
		return false, fetchErr
	}
	return err == nil, nil
}

// authorize calls the auth rules, turning a panic inside them (possible on hostile content)
// into a refusal: an event that crashes the checker is not one to let into the state.
func authorize(rv id.RoomVersion, p *pdu.PDU, authEvents []*pdu.PDU, getEvents eventauth.GetEventsFunc, keys pdu.GetKeyFunc) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("stateres: auth rules panicked: %v", v)
		}
	}()
	return events.AuthorizeEvent(rv, p, authEvents, getEvents, keys)
}

func (r *resolver) keyFunc() pdu.GetKeyFunc {
	if r.keys != nil {
		return r.keys
	}
	return noKeys
}
