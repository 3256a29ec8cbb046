package rooms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Room upgrades (spec: Client-Server API, "Room Upgrades", server behaviour). The whole
// upgrade is one transaction: the new room with its copied state, the moved aliases and
// directory entry, the tombstone and the restricted power levels in the old room all exist
// afterwards, or none of them does.

// UpgradeRequest is a parsed /upgrade request.
type UpgradeRequest struct {
	Sender     id.UserID
	RoomID     id.RoomID
	NewVersion id.RoomVersion
	// AdditionalCreators is the full set of creators besides the sender for a room version
	// with privileged creators (v12+); ignored for other versions. Creators of the old room are
	// not carried over on their own.
	AdditionalCreators []id.UserID
}

// upgradedStateTypes are the state events (empty state key) copied into the new room after its
// power levels, in this order: the spec's recommended list. The canonical alias is handled with
// the aliases.
var upgradedStateTypes = []string{
	"m.room.join_rules", "m.room.history_visibility", "m.room.guest_access", "m.room.name",
	"m.room.topic", "m.room.avatar", "m.room.encryption", "m.room.server_acl",
}

// maxCopiedExtra bounds the bans and space children carried into the new room: they are
// written in the upgrade's single transaction, which Badger caps at about 1 MB with the
// small-board memtable.
const maxCopiedExtra = 100

// UpgradeRoom replaces a room with a new one of another version and returns the new room's ID.
func (s *Service) UpgradeRoom(ctx context.Context, req UpgradeRequest) (id.RoomID, error) {
	if !events.Supported(req.NewVersion) {
		return "", merr.UnsupportedRoomVersion("room version %q is not supported here", req.NewVersion)
	}
	oldNID, err := s.roomNID(req.RoomID)
	if err != nil {
		return "", err
	}
	var extra []id.UserID
	if events.Base(req.NewVersion).PrivilegedRoomCreators() {
		seen := map[id.UserID]bool{req.Sender: true}
		for _, u := range req.AdditionalCreators {
			if _, _, err := u.ParseAndValidateRelaxed(); err != nil || !strings.HasPrefix(string(u), "@") {
				return "", merr.InvalidParam("additional_creators: %q is not a valid user ID", u)
			}
			if !seen[u] {
				seen[u] = true
				extra = append(extra, u)
			}
		}
	}
	dn, av := "", ""
	if s.prof != nil {
		dn, av, _ = s.prof.Profile(ctx, req.Sender)
	}
	unlock := s.lock(oldNID)
	defer unlock()
	var newID id.RoomID
	err = s.st.Update(func(txn *store.Txn) error {
		u := &upgrade{s: s, txn: txn, req: req, extra: extra, displayName: dn, avatar: av}
		if err := u.run(oldNID); err != nil {
			return err
		}
		newID = u.newID
		return nil
	})
	if err != nil {
		return "", err
	}
	return newID, nil
}

// upgrade is one upgrade in progress inside its transaction.
type upgrade struct {
	s           *Service
	txn         *store.Txn
	req         UpgradeRequest
	extra       []id.UserID
	displayName string
	avatar      string

	old   *room
	new   *room
	newID id.RoomID
}

func (u *upgrade) run(oldNID uint64) error {
	s, txn, sender, rv := u.s, u.txn, u.req.Sender, u.req.NewVersion
	var err error
	if u.old, err = loadRoom(txn, oldNID); err != nil {
		return err
	}
	if err := u.checkAllowed(); err != nil {
		return err
	}
	create, err := u.oldState("m.room.create", "")
	if err != nil {
		return err
	}
	cc := map[string]any{"room_version": string(rv)}
	if create != nil {
		oc := objectOf(create.Content)
		if t, ok := oc["type"].(string); ok {
			cc["type"] = t
		}
		if f, ok := oc["m.federate"].(bool); ok && !f {
			cc["m.federate"] = false
		}
	}
	if events.Base(rv).CreatorInContent() {
		cc["creator"] = sender
	}
	if events.Base(rv).PrivilegedRoomCreators() && len(u.extra) > 0 {
		cc["additional_creators"] = u.extra
	}
	pred := map[string]any{"room_id": u.old.rec.ID}
	if !events.Base(rv).RoomIDIsCreateEventID() {
		// The room ID is chosen here, so the tombstone can name it before the new room
		// exists, and the new room's predecessor can name the tombstone. From v12 the room
		// ID is the create event's hash, so the tombstone follows the new room instead and
		// the predecessor has no event ID (the spec allows that).
		u.newID = id.RoomID("!" + randomString(18) + ":" + s.server)
		tomb, err := u.tombstone()
		if err != nil {
			return err
		}
		pred["event_id"] = tomb.String()
	}
	cc["predecessor"] = pred
	if err := u.createRoom(cc); err != nil {
		return err
	}
	member := map[string]any{"membership": "join"}
	if u.displayName != "" {
		member["displayname"] = u.displayName
	}
	if u.avatar != "" {
		member["avatar_url"] = u.avatar
	}
	if err := u.sendNew("m.room.member", sender.String(), member, true); err != nil {
		return err
	}
	if err := u.copyState(); err != nil {
		return err
	}
	if err := u.moveAliases(); err != nil {
		return err
	}
	if pub, err := txn.Published(u.old.nid); err != nil {
		return err
	} else if pub {
		if err := txn.SetPublished(u.new.nid, true); err != nil {
			return err
		}
		if err := txn.SetPublished(u.old.nid, false); err != nil {
			return err
		}
	}
	if events.Base(rv).RoomIDIsCreateEventID() {
		if _, err := u.tombstone(); err != nil {
			return err
		}
	}
	if err := u.restrictOldRoom(); err != nil {
		return err
	}
	if err := txn.PutRoom(u.new.nid, u.new.rec); err != nil {
		return err
	}
	return txn.PutRoom(u.old.nid, u.old.rec)
}

// checkAllowed applies the spec's first step: the sender may send m.room.tombstone in the old
// room (which needs them joined).
func (u *upgrade) checkAllowed() error {
	m, err := u.oldState("m.room.member", u.req.Sender.String())
	if err != nil {
		return err
	}
	if m == nil || m.Membership() != "join" {
		return merr.Forbidden("you are not in this room")
	}
	pl, err := u.s.powerLevels(u.txn, u.old.nid)
	if err != nil {
		return err
	}
	if need := pl.GetEventLevel(eventType("m.room.tombstone")); pl.GetUserLevel(u.req.Sender) < need {
		return merr.Forbidden("upgrading this room needs power level %d (to send m.room.tombstone)", need)
	}
	return nil
}

// oldState reads a current state event of the old room, or nil.
func (u *upgrade) oldState(typ, sk string) (*events.Lite, error) {
	rec, err := u.s.currentStateEvent(u.txn, u.old.nid, typ, sk)
	if err != nil || rec == nil {
		return nil, err
	}
	return events.ParseLite(rec.PDU)
}

func (u *upgrade) tombstone() (id.EventID, error) {
	empty := ""
	t := events.Template{Type: "m.room.tombstone", StateKey: &empty, Sender: u.req.Sender,
		Content: content(map[string]any{"body": "This room has been replaced", "replacement_room": u.newID})}
	a, err := u.s.appendEvent(u.txn, u.old, t, SendOpts{})
	if err != nil {
		return "", err
	}
	return a.EventID, nil
}

// createRoom builds, authorises and stores the new room's create event.
func (u *upgrade) createRoom(cc map[string]any) error {
	s, txn, rv := u.s, u.txn, u.req.NewVersion
	empty := ""
	t := events.Template{Type: "m.room.create", StateKey: &empty, Sender: u.req.Sender, Content: content(cc)}
	built, err := events.Build(rv, u.newID, t, nil, nil, 1, s.now(), s.signer)
	if err != nil {
		return err
	}
	if events.Base(rv).RoomIDIsCreateEventID() {
		if u.newID, err = events.RoomIDFor(built.PDU); err != nil {
			return fmt.Errorf("derive room id: %w", err)
		}
	}
	if err := events.Authorize(rv, built.PDU, s.getEvents(txn)); err != nil {
		if me, ok := merr.As(err); ok && me.Status < 500 {
			// Only additional_creators in the create content came from the client.
			return merr.InvalidParam("the new room's create event is invalid: %s", me.Message)
		}
		return err
	}
	nid, err := txn.CreateRoom(&store.RoomRecord{ID: u.newID.String(), Version: string(rv)})
	if err != nil {
		return err
	}
	if u.new, err = loadRoom(txn, nid); err != nil {
		return err
	}
	_, err = s.store(txn, u.new, built, SendOpts{})
	return err
}

// sendNew appends a state event to the new room as the upgrader. When must is false an event
// the auth rules refuse (odd content carried over from the old room) is skipped and logged.
func (u *upgrade) sendNew(typ, sk string, c any, must bool) error {
	return u.send(u.new, typ, sk, c, must)
}

func (u *upgrade) send(r *room, typ, sk string, c any, must bool) error {
	t := events.Template{Type: typ, StateKey: &sk, Sender: u.req.Sender, Content: contentOf(c)}
	_, err := u.s.appendEvent(u.txn, r, t, SendOpts{})
	if err == nil || must {
		return err
	}
	if me, ok := merr.As(err); ok && me.Status < 500 {
		// In the new room this loses state; in the old room it is the spec's "if possible".
		level := slog.LevelWarn
		if r == u.old {
			level = slog.LevelInfo
		}
		u.s.log.Log(context.Background(), level, "room upgrade: event not sent", "room", r.rec.ID, "type", typ, "state_key", sk, "err", err)
		return nil
	}
	return err
}

// copyState sends the new room's power levels and the transferable state, with the upgrader's
// power raised as far as sending all of it needs and restored afterwards.
func (u *upgrade) copyState() error {
	rv, oldRV := u.req.NewVersion, id.RoomVersion(u.old.rec.Version)
	plEv, err := u.oldState("m.room.power_levels", "")
	if err != nil {
		return err
	}
	pl := map[string]any{}
	if plEv != nil {
		pl = objectOf(plEv.Content)
	}
	users := map[string]any{}
	if m, ok := pl["users"].(map[string]any); ok {
		users = maps.Clone(m)
	}
	evLevels, _ := pl["events"].(map[string]any)
	if evLevels == nil {
		evLevels = map[string]any{}
	}
	stateDefault := levelOf(pl["state_default"], 50)
	needed := max(stateDefault, levelOf(pl["ban"], 50))
	for _, v := range evLevels {
		needed = max(needed, levelOf(v, 0))
	}
	if events.Base(oldRV).PrivilegedRoomCreators() && !events.Base(rv).PrivilegedRoomCreators() {
		// The old room's creators had unlimited power, which the new version cannot express:
		// they become admins at the highest level in use.
		top := max(100, needed)
		for _, v := range users {
			top = max(top, levelOf(v, 0))
		}
		for _, c := range u.oldCreators() {
			if levelOf(users[c], 0) < top {
				users[c] = top
			}
		}
	}
	final := maps.Clone(users)
	raised := false
	if events.Base(rv).PrivilegedRoomCreators() {
		// Creators cannot appear in the power levels (auth rule 9.4 of v12).
		for _, c := range append([]id.UserID{u.req.Sender}, u.extra...) {
			delete(users, c.String())
			delete(final, c.String())
		}
		// v12: tombstones need more than other state, so only creators can upgrade by default.
		if levelOf(evLevels["m.room.tombstone"], stateDefault) <= stateDefault {
			evLevels = maps.Clone(evLevels)
			evLevels["m.room.tombstone"] = max(150, stateDefault+1)
		}
	} else if cur := levelOf(users[u.req.Sender.String()], levelOf(pl["users_default"], 0)); cur < needed {
		users[u.req.Sender.String()] = needed
		raised = true
	}
	initial := maps.Clone(pl)
	initial["users"] = users
	initial["events"] = evLevels
	if err := u.sendNew("m.room.power_levels", "", initial, true); err != nil {
		return err
	}
	for _, typ := range upgradedStateTypes {
		ev, err := u.oldState(typ, "")
		if err != nil {
			return err
		}
		if ev != nil {
			if err := u.sendNew(typ, "", json.RawMessage(ev.Content), false); err != nil {
				return err
			}
		}
	}
	if err := u.copyBansAndChildren(); err != nil {
		return err
	}
	if raised {
		restored := maps.Clone(initial)
		restored["users"] = final
		return u.sendNew("m.room.power_levels", "", restored, true)
	}
	return nil
}

// oldCreators lists the old room's creators (v12+: sender and additional_creators).
func (u *upgrade) oldCreators() []string {
	create, err := u.oldState("m.room.create", "")
	if err != nil || create == nil {
		return nil
	}
	out := []string{create.Sender}
	if extra, ok := objectOf(create.Content)["additional_creators"].([]any); ok {
		for _, e := range extra {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// copyBansAndChildren carries over bans (so that banned users stay out) and, for a space, its
// children.
func (u *upgrade) copyBansAndChildren() error {
	create, err := u.oldState("m.room.create", "")
	if err != nil {
		return err
	}
	space := create != nil && objectOf(create.Content)["type"] == "m.space"
	type entry struct {
		typ, sk string
		c       map[string]any
	}
	var copies []entry
	err = u.txn.AllCurrentState(u.old.nid, func(sk, pos uint64) (bool, error) {
		typ, key, err := u.txn.StateKeyOf(sk)
		if err != nil {
			return false, err
		}
		switch {
		case len(copies) >= maxCopiedExtra:
			return false, nil
		case typ == "m.room.member":
		case typ == "m.space.child" && space:
		default:
			return true, nil
		}
		rec, err := u.txn.Event(pos)
		if err != nil {
			return false, err
		}
		l, err := events.ParseLite(rec.PDU)
		if err != nil {
			return false, err
		}
		c := objectOf(l.Content)
		if typ == "m.room.member" {
			if l.Membership() != "ban" || key == u.req.Sender.String() {
				return true, nil
			}
			ban := map[string]any{"membership": "ban"}
			if r, ok := c["reason"].(string); ok && r != "" {
				ban["reason"] = r
			}
			c = ban
		} else if len(c) == 0 {
			return true, nil // a removed child
		}
		copies = append(copies, entry{typ, key, c})
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, e := range copies {
		if err := u.sendNew(e.typ, e.sk, e.c, false); err != nil {
			return err
		}
	}
	return nil
}

// moveAliases points the old room's local aliases at the new room and moves the canonical
// alias: the new room gets the old content, the old room keeps only its remote aliases.
func (u *upgrade) moveAliases() error {
	txn := u.txn
	aliases, err := txn.RoomAliases(u.old.nid)
	if err != nil {
		return err
	}
	for _, al := range aliases {
		rec, err := txn.Alias(al)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := txn.DeleteAlias(al, u.old.nid); err != nil {
			return err
		}
		rec.RoomID = u.newID.String()
		if err := txn.PutAlias(al, u.new.nid, rec); err != nil {
			return err
		}
	}
	ca, err := u.oldState("m.room.canonical_alias", "")
	if err != nil || ca == nil {
		return err
	}
	c := objectOf(ca.Content)
	if len(c) == 0 {
		return nil
	}
	if err := u.sendNew("m.room.canonical_alias", "", json.RawMessage(ca.Content), false); err != nil {
		return err
	}
	local := func(v any) bool {
		s, ok := v.(string)
		return ok && strings.HasSuffix(s, ":"+u.s.server)
	}
	kept, removed := map[string]any{}, false
	for k, v := range c {
		switch k {
		case "alias":
			if local(v) {
				removed = true
				continue
			}
		case "alt_aliases":
			alts, ok := v.([]any)
			if !ok {
				break
			}
			var rest []any
			for _, a := range alts {
				if local(a) {
					removed = true
				} else {
					rest = append(rest, a)
				}
			}
			if len(rest) == 0 {
				continue
			}
			v = rest
		}
		kept[k] = v
	}
	if !removed {
		return nil // nothing local was named
	}
	return u.send(u.old, "m.room.canonical_alias", "", kept, false)
}

// restrictOldRoom raises events_default and invite in the old room to the greater of 50 and
// users_default+1, as the spec suggests, when the upgrader may change the power levels.
func (u *upgrade) restrictOldRoom() error {
	plEv, err := u.oldState("m.room.power_levels", "")
	if err != nil || plEv == nil {
		return err
	}
	pl := objectOf(plEv.Content)
	lvl := max(50, levelOf(pl["users_default"], 0)+1)
	changed := false
	for _, k := range []string{"events_default", "invite"} {
		if levelOf(pl[k], 0) < lvl {
			pl[k] = lvl
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return u.send(u.old, "m.room.power_levels", "", pl, false)
}

// objectOf decodes a JSON object keeping numbers exact; anything else is an empty object.
func objectOf(raw []byte) map[string]any {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if d.Decode(&m) != nil || m == nil {
		return map[string]any{}
	}
	return m
}

// levelOf reads a power level (a number, or a numeric string in old rooms), or def.
func levelOf(v any, def int) int {
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return int(i)
		}
		if f, err := n.Float64(); err == nil {
			return int(f)
		}
	case float64:
		return int(n)
	case int:
		return n
	case string:
		if i, err := strconv.Atoi(strings.TrimSpace(n)); err == nil {
			return i
		}
	}
	return def
}
