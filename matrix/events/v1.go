package events

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	jsonv2 "encoding/json/v2"
	"fmt"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// Room versions 1 and 2 use the original event format: the origin server picks the event ID
// ("$random:server", sent in an event_id field) and references are [event_id, {"sha256": hash}]
// pairs. The rest of Hearth works on mautrix's *pdu.PDU (the v3+ format), so a v1 event is
// converted on Parse: the IDs of its references go to PrevEvents/AuthEvents, its own ID to
// InternalMeta.EventID, and the reference hashes are kept in InternalMeta.Extra (never
// serialised by the PDU's own encoder) so Encode can give back the v1 shape.

// Keys of InternalMeta.Extra used for v1-format events.
const (
	v1Marker  = "hearth_v1"         // true: the PDU came from (or is to be sent in) the v1 format
	v1RefsKey = "hearth_v1_refs"    // map[id.EventID]pdu.Hashes: hashes of the references
	v1SelfKey = "hearth_v1_selfref" // []byte: this event's own reference hash
)

// Joinable reports whether this server takes part in rooms of version v over federation:
// every version it creates, and 1.
func Joinable(v id.RoomVersion) bool { return v == id.RoomV1 || Supported(v) }

// JoinableVersions lists the versions for make_join/make_knock's ver parameter.
func JoinableVersions() []id.RoomVersion {
	return append([]id.RoomVersion{id.RoomV1}, supportedVersions...)
}

// V1Format reports whether rv uses the v1 event format (room versions 1 and 2).
func V1Format(rv id.RoomVersion) bool { return Base(rv).EventIDFormat() == id.EventIDFormatCustom }

// IsV1 reports whether p was decoded from (or built in) the v1 event format.
func IsV1(p *pdu.PDU) bool {
	v, _ := p.InternalMeta.Extra[v1Marker].(bool)
	return v
}

// EventID is the event's ID in a room of version rv: the event_id field for versions 1 and 2,
// the reference hash otherwise. pdu.PDU.GetEventID cannot do the former.
func EventID(rv id.RoomVersion, p *pdu.PDU) (id.EventID, error) {
	if !V1Format(rv) {
		return p.GetEventID(Base(rv))
	}
	if p.InternalMeta.EventID == "" {
		return "", fmt.Errorf("room version %s event has no event_id", rv)
	}
	return p.InternalMeta.EventID, nil
}

// looksV1 tells the two formats apart without a room version (stored events are decoded
// without one): v1 references are arrays, v3+ references strings; a create event has no
// references, so its event_id field decides.
func looksV1(b []byte) bool {
	for _, path := range []string{"prev_events.0", "auth_events.0"} {
		if r := gjson.GetBytes(b, path); r.Exists() {
			return r.IsArray()
		}
	}
	return gjson.GetBytes(b, "event_id").Type == gjson.String
}

// parseV1 decodes a v1-format event into a *pdu.PDU.
func parseV1(b []byte) (*pdu.PDU, error) {
	var v pdu.RoomV1PDU
	if err := jsonv2.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode v1 pdu: %w", err)
	}
	// A make_join template has no event_id yet (the joining server picks it); EventID
	// refuses such an event, so parse (federation) drops one arriving without.
	refs := make(map[id.EventID]pdu.Hashes, len(v.PrevEvents)+len(v.AuthEvents))
	ids := func(rs []pdu.V1EventReference) []id.EventID {
		out := make([]id.EventID, len(rs))
		for i, r := range rs {
			out[i] = r.ID
			refs[r.ID] = r.Hashes
		}
		return out
	}
	p := &pdu.PDU{
		AuthEvents:           ids(v.AuthEvents),
		Content:              v.Content,
		Depth:                v.Depth,
		Hashes:               v.Hashes,
		OriginServerTS:       v.OriginServerTS,
		PrevEvents:           ids(v.PrevEvents),
		Redacts:              v.Redacts,
		RoomID:               v.RoomID,
		Sender:               v.Sender,
		Signatures:           v.Signatures,
		StateKey:             v.StateKey,
		Sticky:               v.Sticky,
		Type:                 v.Type,
		Unsigned:             v.Unsigned,
		Unknown:              v.Unknown,
		DeprecatedPrevState:  v.DeprecatedPrevState,
		DeprecatedOrigin:     v.DeprecatedOrigin,
		DeprecatedMembership: v.DeprecatedMembership,
	}
	p.InternalMeta.EventID = v.EventID
	extra := map[string]any{v1Marker: true, v1RefsKey: refs}
	// The own reference hash is what an event referring to this one must carry; the
	// redaction rules of versions 1 and 2 are the same, so either version computes it.
	if h, err := v.GetReferenceHash(id.RoomV1); err == nil {
		extra[v1SelfKey] = h[:]
	}
	p.InternalMeta.Extra = extra
	return p, nil
}

// toV1 turns a converted PDU back into the v1 format.
func toV1(p *pdu.PDU) *pdu.RoomV1PDU {
	refs, _ := p.InternalMeta.Extra[v1RefsKey].(map[id.EventID]pdu.Hashes)
	list := func(ids []id.EventID) []pdu.V1EventReference {
		out := make([]pdu.V1EventReference, len(ids))
		for i, e := range ids {
			h, ok := refs[e]
			if !ok || h.SHA256 == nil {
				h = pdu.Hashes{SHA256: []byte{}}
			}
			out[i] = pdu.V1EventReference{ID: e, Hashes: h}
		}
		return out
	}
	return &pdu.RoomV1PDU{
		AuthEvents:           list(p.AuthEvents),
		Content:              p.Content,
		Depth:                p.Depth,
		EventID:              p.InternalMeta.EventID,
		Hashes:               p.Hashes,
		OriginServerTS:       p.OriginServerTS,
		PrevEvents:           list(p.PrevEvents),
		Redacts:              p.Redacts,
		RoomID:               p.RoomID,
		Sender:               p.Sender,
		Signatures:           p.Signatures,
		StateKey:             p.StateKey,
		Sticky:               p.Sticky,
		Type:                 p.Type,
		Unsigned:             p.Unsigned,
		Unknown:              p.Unknown,
		DeprecatedPrevState:  p.DeprecatedPrevState,
		DeprecatedOrigin:     p.DeprecatedOrigin,
		DeprecatedMembership: p.DeprecatedMembership,
	}
}

// NewV1EventID makes an event ID for an event this server creates in a v1/v2 room.
func NewV1EventID(server string) (id.EventID, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random event id: %w", err)
	}
	return id.EventID("$" + base64.RawURLEncoding.EncodeToString(b) + ":" + server), nil
}

// MarkV1 prepares p to be signed and sent in the v1 format: it gets an event ID of this server
// unless it has one, and refHashes (nil allowed) supplies the hashes of its references.
// Hashes already known (from a make_join template) are kept.
func MarkV1(p *pdu.PDU, server string, refHashes func(id.EventID) []byte) error {
	if p.InternalMeta.EventID == "" {
		eid, err := NewV1EventID(server)
		if err != nil {
			return err
		}
		p.InternalMeta.EventID = eid
	}
	if p.InternalMeta.Extra == nil {
		p.InternalMeta.Extra = map[string]any{}
	}
	refs, _ := p.InternalMeta.Extra[v1RefsKey].(map[id.EventID]pdu.Hashes)
	if refs == nil {
		refs = map[id.EventID]pdu.Hashes{}
	}
	if refHashes != nil {
		for _, e := range append(append([]id.EventID(nil), p.PrevEvents...), p.AuthEvents...) {
			if _, ok := refs[e]; ok {
				continue
			}
			if h := refHashes(e); h != nil {
				refs[e] = pdu.Hashes{SHA256: h}
			}
		}
	}
	p.InternalMeta.Extra[v1RefsKey] = refs
	p.InternalMeta.Extra[v1Marker] = true
	return nil
}

// RefHashesFrom answers reference hashes from an event getter (the store's), for MarkV1.
func RefHashesFrom(get eventauth.GetEventsFunc) func(id.EventID) []byte {
	if get == nil {
		return nil
	}
	return func(e id.EventID) []byte {
		evs, err := get([]id.EventID{e})
		if err != nil || len(evs) != 1 || evs[0] == nil {
			return nil
		}
		h, _ := evs[0].InternalMeta.Extra[v1SelfKey].([]byte)
		return h
	}
}

// SignPDU signs p as s in a room of version rv and returns its ID and wire JSON (the v1 format
// for versions 1 and 2, which MarkV1 must have prepared).
func SignPDU(rv id.RoomVersion, p *pdu.PDU, s Signer) (id.EventID, []byte, error) {
	rv = Base(rv)
	if !V1Format(rv) {
		if err := p.Sign(rv, s.ServerName, s.KeyID, s.Key); err != nil {
			return "", nil, fmt.Errorf("sign event: %w", err)
		}
		eid, err := p.GetEventID(rv)
		if err != nil {
			return "", nil, fmt.Errorf("event id: %w", err)
		}
		b, err := Encode(p)
		return eid, b, err
	}
	if err := MarkV1(p, s.ServerName, nil); err != nil {
		return "", nil, err
	}
	v := toV1(p)
	if err := v.Sign(rv, s.ServerName, s.KeyID, s.Key); err != nil {
		return "", nil, fmt.Errorf("sign v1 event: %w", err)
	}
	p.Hashes, p.Signatures = v.Hashes, v.Signatures
	if h, err := v.GetReferenceHash(rv); err == nil {
		p.InternalMeta.Extra[v1SelfKey] = h[:]
	}
	b, err := jsonv2.Marshal(v)
	if err != nil {
		return "", nil, fmt.Errorf("encode v1 event: %w", err)
	}
	return v.EventID, b, nil
}

// redactV1 is Redact for a v1-format event.
func redactV1(rv id.RoomVersion, b []byte) ([]byte, error) {
	var v pdu.RoomV1PDU
	if err := jsonv2.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode v1 pdu: %w", err)
	}
	sigs, hashes := v.Signatures, v.Hashes
	r := v.Redact(rv)
	r.Signatures, r.Hashes = sigs, hashes
	out, err := jsonv2.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode redacted v1 pdu: %w", err)
	}
	return out, nil
}

// authorizeV1 runs eventauth for a v1/v2 room. mautrix's rules compute the create event's ID
// from its hash (rule 5.3.1, the creator's first join), which fails for versions 1 and 2, so
// the rules run as version 3: versions 1 to 3 share their auth rules (3 changed the event
// format only). The one comparison with the create event's ID is kept true by rewriting the
// create reference in a copy of the event to the ID version 3 would compute.
func authorizeV1(p *pdu.PDU, auth []*pdu.PDU, get eventauth.GetEventsFunc, getKey pdu.GetKeyFunc) error {
	const asVersion = id.RoomV3
	if p.Type == "m.room.member" && len(p.PrevEvents) == 1 && len(p.AuthEvents) <= 1 {
		var create *pdu.PDU
		cands := auth
		if cands == nil && get != nil {
			cands, _ = get(p.AuthEvents)
		}
		for _, c := range cands {
			if c != nil && c.Type == "m.room.create" {
				create = c
			}
		}
		if create != nil && create.InternalMeta.EventID == p.PrevEvents[0] {
			if alias, err := create.GetEventID(asVersion); err == nil {
				cp := *p
				cp.PrevEvents = []id.EventID{alias}
				p = &cp
			}
		}
	}
	return eventauth.Authorize(asVersion, p, auth, get, getKey)
}

// AuthorizeEvent is eventauth.Authorize that also handles room versions 1 and 2. A panic inside
// the rules is a refusal: mautrix v0.32 dereferences a nil value when a power levels event
// removes a user at or above the sender's level (rule 10.9 rejects exactly that), and an event
// the checker cannot get through is not one to accept.
func AuthorizeEvent(rv id.RoomVersion, p *pdu.PDU, auth []*pdu.PDU, get eventauth.GetEventsFunc, getKey pdu.GetKeyFunc) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = eventauth.AuthFailError{Index: "10.9", Message: fmt.Sprintf("the auth rules could not check this event (%v); refused", r)}
		}
	}()
	if V1Format(rv) {
		return authorizeV1(p, auth, get, getKey)
	}
	if OwnedState(rv) {
		return authorizeOwnedState(rv, p, auth, get, getKey)
	}
	return eventauth.Authorize(rv, p, auth, get, getKey)
}

// EventRefs is a list of referenced event IDs decoded from either event format: plain strings
// (v3+) or [event_id, hashes] pairs (v1/v2).
type EventRefs []string

// UnmarshalJSON accepts both shapes of prev_events/auth_events.
func (r *EventRefs) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("decode event references: %w", err)
	}
	out := make(EventRefs, 0, len(raw))
	for _, e := range raw {
		var s string
		if err := json.Unmarshal(e, &s); err == nil {
			out = append(out, s)
			continue
		}
		var pair []json.RawMessage
		if err := json.Unmarshal(e, &pair); err != nil || len(pair) == 0 {
			return fmt.Errorf("event reference is neither an ID nor an [ID, hashes] pair")
		}
		if err := json.Unmarshal(pair[0], &s); err != nil {
			return fmt.Errorf("event reference ID: %w", err)
		}
		out = append(out, s)
	}
	*r = out
	return nil
}
