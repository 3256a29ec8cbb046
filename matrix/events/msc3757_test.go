package events

import (
	"encoding/json/jsontext"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// ownedRoom is a small room built through Build: alice created it (power 100), mod has 50, bob
// and carol 0; everyone may send com.example.test state.
type ownedRoom struct {
	t      *testing.T
	rv     id.RoomVersion
	s      Signer
	byID   map[id.EventID]*pdu.PDU
	auth   []id.EventID // create, power levels, and the members by user below
	member map[id.UserID]id.EventID
	jr     id.EventID // join rules: auth event of joins only
	last   id.EventID
	depth  int64
}

const (
	alice = id.UserID("@alice:hearth.test")
	mod   = id.UserID("@mod:hearth.test")
	bob   = id.UserID("@bob:hearth.test")
	carol = id.UserID("@carol:hearth.test")
)

func newOwnedRoom(t *testing.T, rv id.RoomVersion) *ownedRoom {
	t.Helper()
	r := &ownedRoom{t: t, rv: rv, s: signer(t), byID: map[id.EventID]*pdu.PDU{}, member: map[id.UserID]id.EventID{}}
	creator := ""
	if Base(rv) == id.RoomV10 {
		creator = fmt.Sprintf(`,"creator":%q`, alice)
	}
	create := r.add(alice, "m.room.create", "", fmt.Sprintf(`{"room_version":%q%s}`, rv, creator))
	r.auth = []id.EventID{create}
	r.member[alice] = r.add(alice, "m.room.member", string(alice), `{"membership":"join"}`)
	pl := r.add(alice, "m.room.power_levels", "", fmt.Sprintf(`{"users":{%q:100,%q:50},"users_default":0,"state_default":50,"events":{"com.example.test":0}}`, alice, mod))
	r.auth = append(r.auth, pl)
	r.jr = r.add(alice, "m.room.join_rules", "", `{"join_rule":"public"}`)
	for _, u := range []id.UserID{mod, bob, carol} {
		r.member[u] = r.add(u, "m.room.member", string(u), `{"membership":"join"}`)
	}
	return r
}

// add builds an event from sender, authorises it and appends it; it fails the test when the
// event is refused.
func (r *ownedRoom) add(sender id.UserID, typ, key, content string) id.EventID {
	r.t.Helper()
	b, err := r.build(sender, typ, key, content)
	if err != nil {
		r.t.Fatalf("build %s/%s: %v", typ, key, err)
	}
	if err := Authorize(r.rv, b.PDU, r.get); err != nil {
		r.t.Fatalf("setting up %s/%s by %s: %v", typ, key, sender, err)
	}
	r.byID[b.ID] = b.PDU
	r.last = b.ID
	return b.ID
}

func (r *ownedRoom) build(sender id.UserID, typ, key, content string) (*Built, error) {
	auth := append([]id.EventID(nil), r.auth...)
	if m, ok := r.member[sender]; ok {
		auth = append(auth, m)
	}
	if typ == "m.room.member" && r.jr != "" {
		auth = append(auth, r.jr)
	}
	if typ == "m.room.create" {
		auth = nil
	}
	var prev []id.EventID
	if r.last != "" {
		prev = []id.EventID{r.last}
	}
	r.depth++
	return Build(r.rv, "!owned:hearth.test", Template{Type: typ, StateKey: &key, Sender: sender, Content: jsontext.Value(content)}, prev, auth, r.depth, time.Now(), r.s)
}

func (r *ownedRoom) get(ids []id.EventID) ([]*pdu.PDU, error) {
	out := make([]*pdu.PDU, 0, len(ids))
	for _, e := range ids {
		p, ok := r.byID[e]
		if !ok {
			return nil, fmt.Errorf("no event %s", e)
		}
		out = append(out, p)
	}
	return out, nil
}

// try authorises a com.example.test state event and returns the errcode ("" when allowed).
func (r *ownedRoom) try(sender id.UserID, key string) string {
	r.t.Helper()
	b, err := r.build(sender, "com.example.test", key, `{}`)
	if err != nil {
		r.t.Fatalf("build: %v", err)
	}
	err = AuthorizeLocal(r.rv, b.PDU, r.get, r.s)
	if err == nil {
		return ""
	}
	var me *merr.Error
	if !errors.As(err, &me) {
		r.t.Fatalf("%s as %s: error without errcode: %v", key, sender, err)
	}
	return me.Code
}

const suffix = "_state_key_suffix:!@#$123"

func TestOwnedStateAuthRules(t *testing.T) {
	cases := []struct {
		name   string
		sender id.UserID
		key    string
		want   string
	}{
		{"own ID", bob, string(bob), ""},
		{"own suffixed ID", bob, string(bob) + suffix, ""},
		{"own ID with a device suffix", bob, string(bob) + "_DEVICEID", ""},
		{"creator over a member", alice, string(bob), ""},
		{"creator over a member's suffixed key", alice, string(bob) + suffix, ""},
		{"moderator over a member", mod, string(carol) + "_x", ""},
		{"creator over a non-member", alice, "@notinroom:hs2", ""},
		{"member over another member", bob, string(carol), "M_FORBIDDEN"},
		{"member over another member's suffixed key", bob, string(carol) + suffix, "M_FORBIDDEN"},
		{"member over the creator", bob, string(alice) + "_x", "M_FORBIDDEN"},
		{"moderator over the creator", mod, string(alice), "M_FORBIDDEN"},
		{"equal power", bob, "@dave:hearth.test_x", "M_FORBIDDEN"},
		{"unseparated suffix", bob, string(bob) + suffix[1:], "M_FORBIDDEN"},
		{"misplaced user ID", bob, "@prefix_" + string(bob) + suffix, "M_FORBIDDEN"},
		{"server name extended", bob, string(bob) + ".evil.com_x", "M_FORBIDDEN"},
		{"no server name", alice, "@oops", "M_BAD_JSON"},
		{"bad server name", alice, string(alice) + "@" + suffix[1:], "M_BAD_JSON"},
		{"empty localpart", alice, "@:hearth.test", "M_BAD_JSON"},
		{"suffix too long", bob, string(bob) + "_" + strings.Repeat("x", 256), "M_BAD_JSON"},
		{"longest suffix", bob, string(bob) + "_" + strings.Repeat("x", 255), ""},
		{"plain key", bob, "anything", ""},
		{"plain key too long", bob, strings.Repeat("x", 256), "M_FORBIDDEN"},
	}
	for _, rv := range []id.RoomVersion{RoomVMSC3757v10, RoomVMSC3757v11} {
		r := newOwnedRoom(t, rv)
		for _, c := range cases {
			t.Run(string(rv)+"/"+c.name, func(t *testing.T) {
				if got := r.try(c.sender, c.key); got != c.want {
					t.Fatalf("%s sending %q: got %q, want %q", c.sender, c.key, got, c.want)
				}
			})
		}
	}
}

// The base versions keep the old rule: only the exact sender's ID, whatever the power.
func TestOwnedStateNotInBaseVersions(t *testing.T) {
	for _, rv := range []id.RoomVersion{id.RoomV10, id.RoomV11} {
		r := newOwnedRoom(t, rv)
		for _, c := range []struct {
			sender id.UserID
			key    string
			want   string
		}{
			{bob, string(bob), ""},
			{bob, string(bob) + "_x", "M_FORBIDDEN"},
			{alice, string(bob), "M_FORBIDDEN"},
			{alice, "@oops", "M_FORBIDDEN"},
		} {
			if got := r.try(c.sender, c.key); got != c.want {
				t.Errorf("v%s: %s sending %q: got %q, want %q", rv, c.sender, c.key, got, c.want)
			}
		}
	}
}

// With precomputed auth events (state resolution, federation receipt) the rule reads the power
// levels from those, not from the event's auth_events.
func TestOwnedStatePrecomputedAuthEvents(t *testing.T) {
	r := newOwnedRoom(t, RoomVMSC3757v10)
	b, err := r.build(alice, "com.example.test", string(bob)+"_x", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	authOf := func(pl string) []*pdu.PDU {
		out := []*pdu.PDU{r.byID[r.auth[0]], r.byID[r.member[alice]]}
		if pl != "" {
			out = append(out, r.byID[id.EventID(pl)])
		}
		return out
	}
	if err := AuthorizeEvent(r.rv, b.PDU, authOf(string(r.auth[1])), nil, noKeys); err != nil {
		t.Fatalf("creator refused with the room's power levels: %v", err)
	}
	// Power levels in which bob outranks alice: the same event is refused.
	r.add(alice, "m.room.power_levels", "", fmt.Sprintf(`{"users":{%q:100,%q:100},"events":{"com.example.test":0}}`, alice, bob))
	if err := AuthorizeEvent(r.rv, b.PDU, authOf(string(r.last)), nil, noKeys); err == nil {
		t.Fatal("creator allowed to write the key of a user of equal power")
	}
	// Without power levels the creator has 100, everyone else 0.
	if err := AuthorizeEvent(r.rv, b.PDU, authOf(""), nil, noKeys); err != nil {
		t.Fatalf("creator refused without power levels: %v", err)
	}
}

// Member events are unaffected: their state_key is the target and the membership rules decide.
func TestOwnedStateMembershipUnchanged(t *testing.T) {
	r := newOwnedRoom(t, RoomVMSC3757v11)
	b, err := r.build(alice, "m.room.member", string(bob)+"_x", `{"membership":"join"}`)
	if err != nil {
		t.Fatal(err)
	}
	if err := Authorize(r.rv, b.PDU, r.get); err == nil {
		t.Fatal("join for a suffixed user ID authorised")
	}
}

// The experimental versions are their base version in format, IDs and redaction.
func TestOwnedStateVersionsUseBaseFormat(t *testing.T) {
	s := signer(t)
	for rv, base := range map[id.RoomVersion]id.RoomVersion{RoomVMSC3757v10: id.RoomV10, RoomVMSC3757v11: id.RoomV11} {
		if Base(rv) != base || !Supported(rv) || !Joinable(rv) || !Unstable(rv) || Unstable(base) || OwnedState(base) {
			t.Fatalf("%s: version tables wrong", rv)
		}
		sk := string(alice) + "_dev"
		b, err := Build(rv, "!r:hearth.test", Template{Type: "m.room.name", StateKey: &sk, Sender: alice, Content: jsontext.Value(`{"name":"x","secret":1}`)}, nil, nil, 2, time.Now(), s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := b.PDU.GetEventID(base)
		if err != nil || want != b.ID {
			t.Fatalf("%s: event ID %s, base version gives %s (%v)", rv, b.ID, want, err)
		}
		if got, _ := EventID(rv, b.PDU); got != b.ID {
			t.Fatalf("%s: EventID = %s, want %s", rv, got, b.ID)
		}
		red, err := Redact(rv, b.JSON)
		if err != nil {
			t.Fatal(err)
		}
		redBase, err := Redact(base, b.JSON)
		if err != nil {
			t.Fatal(err)
		}
		if string(red) != string(redBase) || strings.Contains(string(red), "secret") {
			t.Fatalf("%s: redaction differs from %s's:\n%s\n%s", rv, base, red, redBase)
		}
	}
	found := 0
	for _, v := range JoinableVersions() {
		if OwnedState(v) {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("make_join ver list has %d MSC3757 versions, want 2", found)
	}
}

func TestOwnedStateKeyOwner(t *testing.T) {
	for key, want := range map[string]id.UserID{
		"@a:b.c":                             "@a:b.c",
		"@a:b.c_":                            "@a:b.c",
		"@a:b.c_x_y:z":                       "@a:b.c",
		"@a:b.c:8448_d":                      "@a:b.c:8448",
		"@a:[::1]:8448_d":                    "@a:[::1]:8448",
		"@a_b:c.d_e":                         "@a_b:c.d",
		"@oops":                              "",
		"@a:b.c@x_y":                         "",
		"@:b.c":                              "",
		"@a b:c.d":                           "",
		"@a:" + "_":                          "",
		"@a:b.c_" + strings.Repeat("x", 256): "",
	} {
		got, ok := OwnedStateKeyOwner(key)
		if ok != (want != "") || got != want {
			t.Errorf("OwnedStateKeyOwner(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
}
