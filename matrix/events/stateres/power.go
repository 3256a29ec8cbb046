package stateres

import (
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
)

// Event types state resolution looks into.
const (
	typeCreate      = "m.room.create"
	typePowerLevels = "m.room.power_levels"
	typeJoinRules   = "m.room.join_rules"
	typeMember      = "m.room.member"
)

// creatorLevel stands for the infinite power of v12 room creators.
const creatorLevel = math.MaxInt64

// isPowerEvent reports whether an event may take a right away from someone: power levels,
// join rules, a kick or a ban (and the create event, as Synapse and Ruma count it).
func isPowerEvent(ev *Event) bool {
	p := ev.PDU
	if p.StateKey == nil {
		return false
	}
	switch p.Type {
	case typePowerLevels, typeJoinRules, typeCreate:
		return *p.StateKey == ""
	case typeMember:
		m := membership(p.Content)
		return (m == "leave" || m == "ban") && *p.StateKey != p.Sender.String()
	}
	return false
}

func membership(content jsontext.Value) string {
	var c struct {
		Membership string `json:"membership"`
	}
	// A malformed content simply has no membership.
	_ = jsonv2.Unmarshal(content, &c)
	return c.Membership
}

// senderPower is the power level of an event's sender as its own auth events state it, for the
// reverse topological power ordering.
func (r *resolver) senderPower(ev *Event) (int64, error) {
	var plEv, createEv *Event
	for _, a := range ev.PDU.AuthEvents {
		ae, err := r.g.eventByID(a)
		if err != nil {
			return 0, err
		}
		if ae == nil || ae.PDU.StateKey == nil || *ae.PDU.StateKey != "" {
			continue
		}
		switch ae.PDU.Type {
		case typePowerLevels:
			if plEv == nil {
				plEv = ae
			}
		case typeCreate:
			if createEv == nil {
				createEv = ae
			}
		}
	}
	sender := ev.PDU.Sender
	if events.Base(r.rv).RoomIDIsCreateEventID() {
		// v12: the create event is named by the room ID, and its creators outrank everyone.
		createEv = nil
		if ev.PDU.Type == typeCreate && ev.PDU.StateKey != nil && *ev.PDU.StateKey == "" {
			createEv = ev
		} else if len(ev.PDU.RoomID) > 1 {
			ce, err := r.g.eventByID(id.EventID("$" + string(ev.PDU.RoomID[1:])))
			if err != nil {
				return 0, err
			}
			createEv = ce
		}
		if createEv != nil && isCreator(createEv, sender) {
			return creatorLevel, nil
		}
	}
	if plEv == nil {
		if !events.Base(r.rv).RoomIDIsCreateEventID() && createEv != nil && legacyCreator(events.Base(r.rv), createEv) == sender {
			return 100, nil
		}
		return 0, nil
	}
	return userLevel(plEv.PDU.Content, sender), nil
}

// isCreator tells v12 room creators: the create event's sender and its additional_creators.
func isCreator(create *Event, user id.UserID) bool {
	if create.PDU.Sender == user {
		return true
	}
	var c struct {
		Additional []jsontext.Value `json:"additional_creators"`
	}
	_ = jsonv2.Unmarshal(create.PDU.Content, &c)
	for _, v := range c.Additional {
		var s string
		if jsonv2.Unmarshal(v, &s) == nil && id.UserID(s) == user {
			return true
		}
	}
	return false
}

// legacyCreator is the room creator before v12: content.creator up to v10, the sender after.
func legacyCreator(rv id.RoomVersion, create *Event) id.UserID {
	if !rv.CreatorInContent() {
		return create.PDU.Sender
	}
	var c struct {
		Creator jsontext.Value `json:"creator"`
	}
	_ = jsonv2.Unmarshal(create.PDU.Content, &c)
	var s string
	if jsonv2.Unmarshal(c.Creator, &s) != nil {
		return ""
	}
	return id.UserID(s)
}

// userLevel reads users[user], else users_default, else 0 from power levels content. Values
// are read leniently (numbers, numeric strings and booleans, as old room versions allowed):
// this only orders events, the auth rules do the strict checking.
func userLevel(content jsontext.Value, user id.UserID) int64 {
	var c struct {
		Users        map[string]jsontext.Value `json:"users"`
		UsersDefault jsontext.Value            `json:"users_default"`
	}
	if jsonv2.Unmarshal(content, &c) != nil {
		// The users map may be malformed while users_default is fine: try that alone.
		c.Users = nil
		var d struct {
			UsersDefault jsontext.Value `json:"users_default"`
		}
		if jsonv2.Unmarshal(content, &d) == nil {
			c.UsersDefault = d.UsersDefault
		}
	}
	if v, ok := c.Users[user.String()]; ok {
		if n, ok := parseLevel(v); ok {
			return n
		}
	}
	if n, ok := parseLevel(c.UsersDefault); ok {
		return n
	}
	return 0
}

func parseLevel(v jsontext.Value) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	switch v.Kind() {
	case '0':
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return n, true
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > math.MaxInt64 || f < math.MinInt64 {
			return 0, false
		}
		return int64(f), true
	case '"':
		var s string
		if jsonv2.Unmarshal(v, &s) != nil {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		return n, err == nil
	case 't':
		return 1, true
	case 'f':
		return 0, true
	}
	return 0, false
}

// noKeys answers key lookups when the caller gave no keyring.
func noKeys(serverName string, keyID id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
	return "", time.Time{}, fmt.Errorf("stateres: no keyring for key %s of %s", keyID, serverName)
}
