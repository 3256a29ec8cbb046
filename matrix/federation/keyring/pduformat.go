package keyring

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"maunium.net/go/mautrix/crypto/canonicaljson"
	"maunium.net/go/mautrix/id"
)

// ErrInvalidPDU means the event does not have the format of its room version (dropped).
var ErrInvalidPDU = errors.New("invalid PDU")

// Limits from the room version specifications' event format sections.
const (
	maxPDUBytes   = 65536
	maxIDBytes    = 255
	maxSafeInt    = 1<<53 - 1
	maxDepth      = math.MaxInt64
	createType    = "m.room.create"
	memberType    = "m.room.member"
	joinAuthField = "join_authorised_via_users_server"
)

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPDU, fmt.Sprintf(format, a...))
}

// v1Format says whether rv uses the v1/v2 event format (event_id field, [id, hashes] references).
func v1Format(rv id.RoomVersion) bool { return rv.EventIDFormat() == id.EventIDFormatCustom }

// checkFormat is check 1 of "Checks performed on receipt of a PDU": the event has the fields
// and limits of its room version. mautrix's decoder accepts any shape that fits its struct
// (missing fields become zero values), so the checks are made on the raw object here.
func checkFormat(rv id.RoomVersion, raw []byte) (map[string]any, error) {
	// mautrix's canonical JSON refuses floats and integers beyond 2^53 in every room version,
	// so events of versions 1-5 carrying them cannot be hashed or verified and are dropped
	// here (Synapse would accept them in those old versions).
	canon, err := canonicaljson.CanonicalJSON(raw)
	if err != nil {
		return nil, invalid("not canonicalisable JSON: %v", err)
	}
	if len(canon) > maxPDUBytes {
		return nil, invalid("%d bytes as canonical JSON; the limit is %d", len(canon), maxPDUBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, invalid("not a JSON object")
	}
	str := func(name string, required bool) (string, error) {
		v, ok := obj[name]
		if !ok {
			if required {
				return "", invalid("missing %s", name)
			}
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", invalid("%s is not a string", name)
		}
		if len(s) > maxIDBytes && (strictByteLimits(rv) || utf8.RuneCountInString(s) > maxIDBytes) {
			return "", invalid("%s is longer than %d bytes", name, maxIDBytes)
		}
		return s, nil
	}
	typ, err := str("type", true)
	if err != nil {
		return nil, err
	}
	sender, err := str("sender", true)
	if err != nil {
		return nil, err
	}
	if _, _, err := id.UserID(sender).ParseAndValidateRelaxed(); err != nil {
		return nil, invalid("sender %q: %v", sender, err)
	}
	if _, err := str("state_key", false); err != nil {
		return nil, err
	}
	// Room versions whose room ID is the create event's ID have no room_id on the create event.
	noRoomID := rv.RoomIDIsCreateEventID() && typ == createType
	roomID, err := str("room_id", !noRoomID)
	if err != nil {
		return nil, err
	}
	if noRoomID && roomID != "" {
		return nil, invalid("a %s create event has no room_id", rv)
	}
	if !noRoomID && !strings.HasPrefix(roomID, "!") {
		return nil, invalid("room_id %q is not a room ID", roomID)
	}
	if _, ok := obj["content"].(map[string]any); !ok {
		return nil, invalid("content is missing or not an object")
	}
	if err := checkInt(obj, "depth", 0, maxDepth); err != nil {
		return nil, err
	}
	if err := checkInt(obj, "origin_server_ts", math.MinInt64, math.MaxInt64); err != nil {
		return nil, err
	}
	hashes, ok := obj["hashes"].(map[string]any)
	if !ok {
		return nil, invalid("hashes is missing or not an object")
	}
	if _, ok := hashes["sha256"].(string); !ok {
		return nil, invalid("hashes.sha256 is missing or not a string")
	}
	if err := checkSignatures(obj["signatures"]); err != nil {
		return nil, err
	}
	if v1Format(rv) {
		evID, err := str("event_id", true)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(evID, "$") || !strings.Contains(evID, ":") {
			return nil, invalid("event_id %q is not a v1 event ID", evID)
		}
	}
	for _, name := range []string{"prev_events", "auth_events"} {
		if err := checkRefs(rv, obj[name], name); err != nil {
			return nil, err
		}
	}
	if rv.ForbidFloatsAndBigInts() {
		if err := checkNumbers(obj, ""); err != nil {
			return nil, err
		}
	}
	return obj, nil
}

func checkInt(obj map[string]any, name string, lo, hi int64) error {
	n, ok := obj[name].(json.Number)
	if !ok {
		return invalid("%s is missing or not a number", name)
	}
	v, err := n.Int64()
	if err != nil || v < lo || v > hi {
		return invalid("%s %s is not an integer in range", name, n)
	}
	return nil
}

func checkSignatures(v any) error {
	sigs, ok := v.(map[string]any)
	if !ok {
		return invalid("signatures is missing or not an object")
	}
	for server, byKey := range sigs {
		m, ok := byKey.(map[string]any)
		if !ok {
			return invalid("signatures of %s are not an object", server)
		}
		for keyID, sig := range m {
			if _, ok := sig.(string); !ok {
				return invalid("signature %s of %s is not a string", keyID, server)
			}
		}
	}
	return nil
}

// checkRefs checks prev_events/auth_events: event IDs (v3+) or [event_id, hashes] pairs (v1, v2).
func checkRefs(rv id.RoomVersion, v any, name string) error {
	list, ok := v.([]any)
	if !ok {
		return invalid("%s is missing or not an array", name)
	}
	for _, item := range list {
		if v1Format(rv) {
			pair, ok := item.([]any)
			if !ok || len(pair) != 2 {
				return invalid("%s entries must be [event_id, hashes] pairs in room version %s", name, rv)
			}
			item = pair[0]
			if _, ok := pair[1].(map[string]any); !ok {
				return invalid("%s entry hashes are not an object", name)
			}
		}
		s, ok := item.(string)
		if !ok || !strings.HasPrefix(s, "$") || len(s) > maxIDBytes {
			return invalid("%s holds %v, which is not an event ID", name, item)
		}
	}
	return nil
}

// checkNumbers enforces the canonical JSON number rule of room versions 6+: integers in
// [-(2^53)+1, 2^53-1], no floats, anywhere in the event.
func checkNumbers(v any, path string) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if err := checkNumbers(e, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := checkNumbers(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case json.Number:
		n, err := x.Int64()
		if err != nil || n > maxSafeInt || n < -maxSafeInt {
			return invalid("number %s at %s is not an integer within ±(2^53-1)", x, strings.TrimPrefix(path, "."))
		}
	}
	return nil
}

// strictByteLimits reports whether the 255 limits count bytes. Rooms before version 11 were
// created when Synapse counted codepoints, and their histories hold such events, so other
// servers accept them there (gomatrixserverlib does the same).
func strictByteLimits(rv id.RoomVersion) bool {
	switch rv {
	case id.RoomV1, id.RoomV2, id.RoomV3, id.RoomV4, id.RoomV5, id.RoomV6, id.RoomV7, id.RoomV8, id.RoomV9, id.RoomV10:
		return false
	}
	return true
}
