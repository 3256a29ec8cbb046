package rooms

import (
	"context"
	"crypto/rand"
	"encoding/json/jsontext"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/invitefilter"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// StateEvent is one initial_state entry.
type StateEvent struct {
	Type     string         `json:"type"`
	StateKey string         `json:"state_key"`
	Content  jsontext.Value `json:"content"`
}

// CreateRequest is a parsed /createRoom body.
type CreateRequest struct {
	Creator            id.UserID
	Visibility         string
	RoomAliasName      string
	Name               *string
	Topic              *string
	Invite             []id.UserID
	RoomVersion        id.RoomVersion
	CreationContent    map[string]any
	InitialState       []StateEvent
	Preset             string
	IsDirect           bool
	PowerLevelOverride map[string]any
}

// CreateRoom creates a room with all its initial events in one transaction: either the whole
// room exists afterwards or nothing of it does.
func (s *Service) CreateRoom(ctx context.Context, req CreateRequest) (id.RoomID, error) {
	rv := req.RoomVersion
	if rv == "" {
		rv = s.defVer
	}
	if !events.Supported(rv) {
		return "", merr.UnsupportedRoomVersion("room version %q is not supported here", rv)
	}
	preset := req.Preset
	if preset == "" {
		preset = "private_chat"
		if req.Visibility == "public" {
			preset = "public_chat"
		}
	}
	if preset != "private_chat" && preset != "public_chat" && preset != "trusted_private_chat" {
		return "", merr.InvalidParam("unknown preset %q", preset)
	}
	if req.Visibility != "" && req.Visibility != "public" && req.Visibility != "private" {
		return "", merr.InvalidParam("visibility must be public or private")
	}
	var alias string
	if req.RoomAliasName != "" {
		if strings.ContainsAny(req.RoomAliasName, ":# \t\n") {
			return "", merr.InvalidParam("room_alias_name must be a bare localpart")
		}
		alias = "#" + req.RoomAliasName + ":" + s.server
	}
	for _, u := range req.Invite {
		if _, _, err := u.ParseAndValidateRelaxed(); err != nil {
			return "", merr.InvalidParam("invalid user ID in invite: %q", u)
		}
	}
	creator := req.Creator
	displayName, avatar := "", ""
	if s.prof != nil {
		displayName, avatar, _ = s.prof.Profile(ctx, creator)
	}

	// Create event content: creation_content plus the version (and creator before v11).
	cc := map[string]any{}
	for k, v := range req.CreationContent {
		cc[k] = v
	}
	cc["room_version"] = string(rv)
	if !events.Base(rv).RoomIDIsCreateEventID() && !events.Base(rv).UpdatedRedactionRules() {
		cc["creator"] = creator
	}
	if raw, ok := cc["additional_creators"]; ok && events.Base(rv).PrivilegedRoomCreators() {
		// MSC4289: a list of valid user IDs; anything else would make a room whose create
		// event fails the auth rules everywhere.
		list, ok := raw.([]any)
		if !ok {
			return "", merr.BadJSON("creation_content.additional_creators must be a list of user IDs")
		}
		for _, u := range list {
			s, ok := u.(string)
			if !ok {
				return "", merr.BadJSON("creation_content.additional_creators must be a list of user IDs")
			}
			if _, _, err := id.UserID(s).ParseAndValidateRelaxed(); err != nil || !validServerName(id.UserID(s).Homeserver()) {
				return "", merr.BadJSON("%q in creation_content.additional_creators is not a valid user ID", s)
			}
		}
	}
	if events.Base(rv).PrivilegedRoomCreators() && preset == "trusted_private_chat" && len(req.Invite) > 0 {
		// Merge with creators the client named itself, without duplicates.
		seen := map[string]bool{creator.String(): true}
		var extra []string
		if named, ok := cc["additional_creators"].([]any); ok {
			for _, u := range named {
				if s, ok := u.(string); ok && !seen[s] {
					seen[s] = true
					extra = append(extra, s)
				}
			}
		}
		for _, u := range req.Invite {
			if !seen[u.String()] {
				seen[u.String()] = true
				extra = append(extra, u.String())
			}
		}
		cc["additional_creators"] = extra
	}

	var roomID id.RoomID
	var blocked error // an invitee refused (invite_permission.go): the room is made without them
	err := s.st.Update(func(txn *store.Txn) error {
		if alias != "" {
			if _, err := txn.Alias(alias); err == nil {
				return merr.RoomInUse("room alias %s is already in use", alias)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		empty := ""
		createT := events.Template{Type: "m.room.create", StateKey: &empty, Sender: creator, Content: content(cc)}
		var rid id.RoomID
		if !events.Base(rv).RoomIDIsCreateEventID() {
			rid = id.RoomID("!" + randomString(18) + ":" + s.server)
		}
		built, err := events.Build(rv, rid, createT, nil, nil, 1, s.now(), s.signer)
		if err != nil {
			return err
		}
		if events.Base(rv).RoomIDIsCreateEventID() {
			if rid, err = events.RoomIDFor(built.PDU); err != nil {
				return fmt.Errorf("derive room id: %w", err)
			}
		}
		if err := events.Authorize(rv, built.PDU, s.getEvents(txn)); err != nil {
			return err
		}
		nid, err := txn.CreateRoom(&store.RoomRecord{ID: rid.String(), Version: string(rv)})
		if err != nil {
			return err
		}
		unlock := s.lock(nid)
		defer unlock()
		r, err := loadRoom(txn, nid)
		if err != nil {
			return err
		}
		if _, err := s.store(txn, r, built, SendOpts{}); err != nil {
			return err
		}
		send := func(t events.Template) error {
			_, err := s.appendEvent(txn, r, t, SendOpts{})
			return err
		}
		state := func(typ, sk string, c any) error {
			return send(events.Template{Type: typ, StateKey: &sk, Sender: creator, Content: contentOf(c)})
		}
		member := map[string]any{"membership": "join"}
		if displayName != "" {
			member["displayname"] = displayName
		}
		if avatar != "" {
			member["avatar_url"] = avatar
		}
		if err := state("m.room.member", creator.String(), member); err != nil {
			return err
		}
		if err := state("m.room.power_levels", "", powerLevelContent(rv, creator, preset, req)); err != nil {
			return err
		}
		if alias != "" {
			if err := state("m.room.canonical_alias", "", map[string]any{"alias": alias}); err != nil {
				return err
			}
		}
		joinRule, guest := "invite", "can_join"
		if preset == "public_chat" {
			joinRule, guest = "public", "forbidden"
		}
		if err := state("m.room.join_rules", "", map[string]any{"join_rule": joinRule}); err != nil {
			return err
		}
		if err := state("m.room.history_visibility", "", map[string]any{"history_visibility": "shared"}); err != nil {
			return err
		}
		// forbidden is what a room without the event means: public rooms get no event (as on
		// Synapse, whose event order other servers' tests expect).
		if guest != "forbidden" {
			if err := state("m.room.guest_access", "", map[string]any{"guest_access": guest}); err != nil {
				return err
			}
		}
		for _, ev := range req.InitialState {
			if ev.Type == "m.room.create" || ev.Type == "m.room.member" {
				return merr.InvalidParam("initial_state may not contain %s", ev.Type)
			}
			if err := state(ev.Type, ev.StateKey, ev.Content); err != nil {
				return err
			}
		}
		if req.Name != nil {
			if err := state("m.room.name", "", map[string]any{"name": *req.Name}); err != nil {
				return err
			}
		}
		if req.Topic != nil {
			topic := map[string]any{"topic": *req.Topic, "m.topic": map[string]any{"m.text": []map[string]string{{"mimetype": "text/plain", "body": *req.Topic}}}}
			if err := state("m.room.topic", "", topic); err != nil {
				return err
			}
		}
		blocked = nil // this attempt's refusals only, should the transaction be retried
		for _, u := range req.Invite {
			c := map[string]any{"membership": "invite"}
			if req.IsDirect {
				c["is_direct"] = true
			}
			if err := state("m.room.member", u.String(), c); invitefilter.IsRefusal(err) {
				blocked = err
			} else if err != nil {
				return err
			}
		}
		if alias != "" {
			if err := txn.PutAlias(alias, nid, store.AliasRecord{RoomID: rid.String(), Creator: creator.String()}); err != nil {
				return err
			}
		}
		if req.Visibility == "public" {
			if err := txn.SetPublished(nid, true); err != nil {
				return err
			}
		}
		roomID = rid
		return txn.PutRoom(nid, r.rec)
	})
	if err == nil && blocked != nil {
		return roomID, createdWithoutInvite(roomID, blocked)
	}
	return roomID, err
}

func contentOf(c any) jsontext.Value {
	if raw, ok := c.(jsontext.Value); ok {
		if len(raw) == 0 {
			return jsontext.Value("{}")
		}
		return raw
	}
	return content(c)
}

func powerLevelContent(rv id.RoomVersion, creator id.UserID, preset string, req CreateRequest) map[string]any {
	users := map[string]any{}
	if !events.Base(rv).PrivilegedRoomCreators() {
		users[creator.String()] = 100
	}
	if preset == "trusted_private_chat" && !events.Base(rv).PrivilegedRoomCreators() {
		for _, u := range req.Invite {
			users[u.String()] = 100
		}
	}
	pl := map[string]any{
		"users":          users,
		"users_default":  0,
		"events_default": 0,
		"state_default":  50,
		"ban":            50,
		"kick":           50,
		"redact":         50,
		"invite":         inviteLevel(preset),
		"events": map[string]any{
			"m.room.name":               50,
			"m.room.power_levels":       100,
			"m.room.history_visibility": 100,
			"m.room.canonical_alias":    50,
			"m.room.avatar":             50,
			"m.room.tombstone":          100,
			"m.room.server_acl":         100,
			"m.room.encryption":         100,
		},
		"notifications": map[string]any{"room": 50},
	}
	if events.Base(rv).PrivilegedRoomCreators() {
		// Room v12: creators have infinite power, so replacing the room (a tombstone) needs
		// a level above every admin's: 150, as MSC4289 recommends.
		pl["events"].(map[string]any)["m.room.tombstone"] = 150
	}
	for k, v := range req.PowerLevelOverride {
		pl[k] = v
	}
	return pl
}

// inviteLevel is the power needed to invite in a new room: a private chat lets every member
// invite, while a public room keeps invites (and so the restricted joins a member may
// authorise) to moderators, as Synapse does and as Complement's restricted-room tests expect.
func inviteLevel(preset string) int {
	if preset == "public_chat" {
		return 50
	}
	return 0
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// validServerName checks the grammar of a server name (spec appendix "Server name"): a DNS
// name, an IPv4 literal or a bracketed IPv6 literal, with an optional port.
func validServerName(name string) bool {
	host := name
	if strings.HasPrefix(name, "[") {
		end := strings.Index(name, "]")
		if end < 0 {
			return false
		}
		host, name = name[1:end], name[end+1:]
		if net.ParseIP(host) == nil {
			return false
		}
		if name == "" {
			return true
		}
		if name[0] != ':' {
			return false
		}
		return validPort(name[1:])
	}
	if h, port, ok := strings.Cut(name, ":"); ok {
		if !validPort(port) {
			return false
		}
		host = h
	}
	if host == "" || len(host) > 255 {
		return false
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536 && len(p) <= 5
}
