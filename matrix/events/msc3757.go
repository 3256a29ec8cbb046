package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// MSC3757 (owned state events) room versions: versions 10 and 11 with one auth rule changed. A
// state_key starting with "@" names its owner: a user ID, alone or followed by "_" and a suffix
// (MatrixRTC keys its call memberships "@user:server_DEVICE"). The owner may write it, and so
// may anyone with a power level above the owner's; a key whose leading part is no valid user ID
// is refused. Everything else (event format, redaction, state resolution v2, the other auth
// rules) is the base version's, so the rest of Hearth works on Base(rv) wherever mautrix's
// version-dependent behaviour is asked for.
const (
	RoomVMSC3757v10 id.RoomVersion = "org.matrix.msc3757.10"
	RoomVMSC3757v11 id.RoomVersion = "org.matrix.msc3757.11"
)

// Size limits of MSC3757: the whole key may be 511 bytes (a 255-byte user ID, "_", and a
// 255-byte suffix); after its leading user ID at most 256 bytes (the "_" included); a key
// without a leading user ID keeps the usual 255.
const (
	ownedStateKeyMax     = 511
	ownedStateSuffixMax  = 256
	plainStateKeyMax     = 255
	ownedStateUserIDMax  = 255
	ownedStateRuleIndex  = "9"
	ownedStateRuleFormat = "9.1.1"
)

// ErrMalformedOwnedStateKey marks a refusal because the state_key starts with "@" but does not
// begin with a valid user ID. A client sending one made a bad request (400 M_BAD_JSON), unlike a
// key it may not write (403 M_FORBIDDEN).
var ErrMalformedOwnedStateKey = errors.New("state key neither equals a valid user ID nor starts with one plus an underscore")

// Base is the standard room version whose rules rv builds on: 10 or 11 for the MSC3757 versions,
// rv itself otherwise. mautrix's version methods treat an unknown version as the newest one, so
// they must always be asked about Base(rv).
func Base(rv id.RoomVersion) id.RoomVersion {
	switch rv {
	case RoomVMSC3757v10:
		return id.RoomV10
	case RoomVMSC3757v11:
		return id.RoomV11
	}
	return rv
}

// OwnedState reports whether rv has MSC3757's owned state keys.
func OwnedState(rv id.RoomVersion) bool { return rv == RoomVMSC3757v10 || rv == RoomVMSC3757v11 }

// Unstable reports whether rv is an experimental version (/capabilities lists it as "unstable").
func Unstable(rv id.RoomVersion) bool { return OwnedState(rv) }

// OwnedStateKeyOwner parses the owner out of a state_key starting with "@": the key up to the
// first "_" after its first ":" (the whole key without such a "_"). ok is false when that part
// is no valid user ID or a size limit is broken. The "_" cannot belong to the server name, which
// never contains one, so "@a:b.c_x" is owned by @a:b.c, and "@a:b.c.evil_x" by someone else.
func OwnedStateKeyOwner(stateKey string) (owner id.UserID, ok bool) {
	if len(stateKey) > ownedStateKeyMax {
		return "", false
	}
	colon := strings.IndexByte(stateKey, ':')
	if colon < 0 {
		return "", false
	}
	end := len(stateKey)
	if u := strings.IndexByte(stateKey[colon+1:], '_'); u >= 0 {
		end = colon + 1 + u
	}
	if len(stateKey)-end > ownedStateSuffixMax {
		return "", false
	}
	owner = id.UserID(stateKey[:end])
	if !validOwnerID(owner) {
		return "", false
	}
	return owner, true
}

// validOwnerID accepts a user ID of the historical grammar (any printable ASCII but ":" in the
// localpart, since users of other servers may have such IDs) on a valid server name.
func validOwnerID(u id.UserID) bool {
	s := string(u)
	if len(s) > ownedStateUserIDMax || !strings.HasPrefix(s, "@") {
		return false
	}
	colon := strings.IndexByte(s, ':')
	if colon < 2 {
		return false
	}
	for _, c := range []byte(s[1:colon]) {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return id.ValidateServerName(s[colon+1:])
}

// checkOwnedStateKey applies MSC3757's rule to a state event that reached it (not a create or
// member event, which the rules decide earlier). It needs the power levels in force, from the
// auth events (auth, or the event's auth_events through get).
func checkOwnedStateKey(base id.RoomVersion, p *pdu.PDU, auth []*pdu.PDU, get eventauth.GetEventsFunc) error {
	key := *p.StateKey
	if !strings.HasPrefix(key, "@") {
		if len(key) > plainStateKeyMax {
			return eventauth.AuthFailError{Index: ownedStateRuleIndex, Message: fmt.Sprintf("state key is %d bytes; the limit is %d", len(key), plainStateKeyMax)}
		}
		return nil
	}
	owner, ok := OwnedStateKeyOwner(key)
	if !ok {
		return eventauth.AuthFailError{Index: ownedStateRuleFormat, Wrapped: ErrMalformedOwnedStateKey}
	}
	if owner == p.Sender {
		return nil
	}
	if auth == nil {
		if get == nil {
			return fmt.Errorf("owned state: no way to load auth events")
		}
		evs, err := get(p.AuthEvents)
		if err != nil {
			return fmt.Errorf("owned state: load auth events: %w", err)
		}
		auth = evs
	}
	senderPL, ownerPL, err := ownedStateLevels(base, auth, p.Sender, owner)
	if err != nil {
		return err
	}
	if senderPL <= ownerPL {
		return eventauth.AuthFailError{Index: ownedStateRuleIndex, Message: fmt.Sprintf("state key is owned by %s (power %d); the sender's power %d is not above it", owner, ownerPL, senderPL)}
	}
	return nil
}

// ownedStateLevels gives the power levels of sender and owner from the auth events: the
// m.room.power_levels event, or without one the creator at 100 and everyone else at 0.
func ownedStateLevels(base id.RoomVersion, auth []*pdu.PDU, sender, owner id.UserID) (int, int, error) {
	var plEv, createEv *pdu.PDU
	for _, e := range auth {
		if e == nil || e.StateKey == nil || *e.StateKey != "" {
			continue
		}
		switch e.Type {
		case event.StatePowerLevels.Type:
			plEv = e
		case event.StateCreate.Type:
			createEv = e
		}
	}
	if plEv != nil {
		var pl event.PowerLevelsEventContent
		if err := json.Unmarshal(plEv.Content, &pl); err != nil {
			// Versions 10 and 11 require integer levels; the rest of the rules refuse the same.
			return 0, 0, eventauth.AuthFailError{Index: ownedStateRuleIndex, Message: fmt.Sprintf("power levels cannot be read: %v", err)}
		}
		return pl.GetUserLevel(sender), pl.GetUserLevel(owner), nil
	}
	if createEv == nil {
		return 0, 0, eventauth.AuthFailError{Index: "3", Message: "no create event in the auth events"}
	}
	creator := createEv.Sender
	if base.CreatorInContent() {
		var c struct {
			Creator id.UserID `json:"creator"`
		}
		if err := json.Unmarshal(createEv.Content, &c); err == nil && c.Creator != "" {
			creator = c.Creator
		}
	}
	level := func(u id.UserID) int {
		if u == creator {
			return 100
		}
		return 0
	}
	return level(sender), level(owner), nil
}

// authorizeOwnedState runs the auth rules of an MSC3757 version: mautrix as the base version,
// then the owned-state rule here. mautrix's own rule (a key starting with "@" must equal the
// sender) is the one MSC3757 replaces, so mautrix checks a copy whose state_key is the sender's
// ID. That is sound because no rule after the create and member rules (which get the event
// unchanged) reads the state_key: the required power level depends on the type only. Running
// mautrix first means the auth events are known to be well formed when the power levels are
// read from them here, and a sender who may not send at all is refused for that.
func authorizeOwnedState(rv id.RoomVersion, p *pdu.PDU, auth []*pdu.PDU, get eventauth.GetEventsFunc, getKey pdu.GetKeyFunc) error {
	base := Base(rv)
	if p.StateKey == nil || p.Type == event.StateCreate.Type || p.Type == event.StateMember.Type {
		return eventauth.Authorize(base, p, auth, get, getKey)
	}
	checked := p
	if strings.HasPrefix(*p.StateKey, "@") {
		cp := *p
		sender := p.Sender.String()
		cp.StateKey = &sender
		checked = &cp
	}
	if err := eventauth.Authorize(base, checked, auth, get, getKey); err != nil {
		return err
	}
	return checkOwnedStateKey(base, p, auth, get)
}
