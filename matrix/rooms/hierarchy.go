package rooms

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// The space hierarchy (spec: Spaces module; client GET /v1/rooms/{roomId}/hierarchy and
// federation GET /v1/hierarchy/{roomId}). Both read the same data: a room's summary and its
// m.space.child events; they differ in who asks (a local user or a remote server) and in
// how far they go (the client walks the tree depth-first and pages, federation answers one
// level). The client walk describes rooms this server is in from its own state and asks the
// servers named in a child link's via for the others (hierarchy_walk.go); the federation
// answer describes only rooms known here.

// Hierarchy bounds.
const (
	DefaultHierarchyLimit = 50
	MaxHierarchyLimit     = 100
	DefaultHierarchyDepth = 10
	MaxHierarchyDepth     = 20
	// maxHierarchyWalk bounds the rooms one walk visits, so a huge or looping tree costs a
	// bounded amount per request.
	maxHierarchyWalk = 1000
)

// ChildState is an m.space.child event as a stripped state event with its timestamp.
type ChildState struct {
	Type           string          `json:"type"`
	StateKey       string          `json:"state_key"`
	Sender         string          `json:"sender"`
	Content        json.RawMessage `json:"content"`
	OriginServerTS int64           `json:"origin_server_ts"`
}

// HierarchyRoom is one room of a space tree: its summary and its valid child links, in the
// spec's order.
type HierarchyRoom struct {
	Summary       *Summary
	ChildrenState []ChildState
}

// child is a parsed, valid m.space.child link.
type child struct {
	ChildState
	via       []string
	order     string
	hasOrder  bool
	suggested bool
}

// parseChild checks one m.space.child event: a room ID as state key and content.via a
// non-empty array of strings (a child without via has been removed from the space).
func parseChild(cs ChildState) (child, bool) {
	if cs.Type != "m.space.child" || !strings.HasPrefix(cs.StateKey, "!") {
		return child{}, false
	}
	var c struct {
		Via       []any `json:"via"`
		Order     any   `json:"order"`
		Suggested any   `json:"suggested"`
	}
	if json.Unmarshal(cs.Content, &c) != nil || !validVia(c.Via) {
		return child{}, false
	}
	ch := child{ChildState: cs}
	for _, v := range c.Via {
		ch.via = append(ch.via, v.(string))
	}
	if o, ok := c.Order.(string); ok && validOrder(o) {
		ch.order, ch.hasOrder = o, true
	}
	ch.suggested, _ = c.Suggested.(bool)
	return ch, true
}

// sortChildren puts links in the spec's order: by valid order key, then timestamp, then room ID.
func sortChildren(out []child) {
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.hasOrder != b.hasOrder {
			return a.hasOrder
		}
		if a.hasOrder && a.order != b.order {
			return a.order < b.order
		}
		if a.OriginServerTS != b.OriginServerTS {
			return a.OriginServerTS < b.OriginServerTS
		}
		return a.StateKey < b.StateKey
	})
}

// spaceChildren reads the valid m.space.child events of a room, in the spec's order.
func (s *Service) spaceChildren(txn *store.Txn, nid uint64) ([]child, error) {
	var out []child
	err := txn.AllCurrentState(nid, func(sk, pos uint64) (bool, error) {
		typ, key, err := txn.StateKeyOf(sk)
		if err != nil {
			return false, err
		}
		if typ != "m.space.child" || !strings.HasPrefix(key, "!") {
			return true, nil
		}
		ev, err := loadEvent(txn, pos, "")
		if err != nil {
			return false, err
		}
		if ch, ok := parseChild(ChildState{Type: typ, StateKey: key, Sender: ev.Lite.Sender, Content: ev.Lite.Content, OriginServerTS: ev.Lite.OriginServerTS}); ok {
			out = append(out, ch)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	sortChildren(out)
	return out, nil
}

func validVia(via []any) bool {
	if len(via) == 0 {
		return false
	}
	for _, v := range via {
		if s, ok := v.(string); !ok || s == "" {
			return false
		}
	}
	return true
}

// validOrder: at most 50 characters, each from \x20 to \x7E.
func validOrder(o string) bool {
	if len(o) > 50 {
		return false
	}
	for i := 0; i < len(o); i++ {
		if o[i] < 0x20 || o[i] > 0x7E {
			return false
		}
	}
	return true
}

// hierarchyRoom builds one room's entry; suggestedOnly keeps only suggested child links.
func (s *Service) hierarchyRoom(txn *store.Txn, nid uint64, suggestedOnly bool) (*HierarchyRoom, []child, error) {
	sum, err := s.summary(txn, nid)
	if err != nil {
		return nil, nil, err
	}
	hr := &HierarchyRoom{Summary: sum, ChildrenState: []ChildState{}}
	if sum.RoomType != "m.space" {
		// Only spaces have children: m.space.child events in an ordinary room are ignored
		// (spec: "Spaces"), as Synapse does.
		return hr, nil, nil
	}
	children, err := s.spaceChildren(txn, nid)
	if err != nil {
		return nil, nil, err
	}
	kept := children[:0]
	for _, c := range children {
		if suggestedOnly && !c.suggested {
			continue
		}
		kept = append(kept, c)
		hr.ChildrenState = append(hr.ChildrenState, c.ChildState)
	}
	return hr, kept, nil
}

// HierarchyRequest is a parsed client /hierarchy query.
type HierarchyRequest struct {
	User          id.UserID
	Root          id.RoomID
	SuggestedOnly bool
	MaxDepth      int // < 0: the default
	Limit         int // <= 0: the default
	From          string
}

// HierarchyPage is one page of the client walk.
type HierarchyPage struct {
	Rooms     []*HierarchyRoom
	NextBatch string
}

func (s *Service) userMaySeeInHierarchy(txn *store.Txn, sum *Summary, user id.UserID, nid uint64) (bool, error) {
	m, err := txn.GetMembership(user.String(), nid)
	if err != nil {
		return false, err
	}
	return summaryVisible(txn, sum, user, m.Membership)
}

// hierarchyToken encodes the page offset with a digest of the parameters it is valid for.
func hierarchyToken(offset int, root id.RoomID, suggestedOnly bool, depth int) string {
	return strconv.Itoa(offset) + "_" + hierarchyDigest(root, suggestedOnly, depth)
}

func hierarchyDigest(root id.RoomID, suggestedOnly bool, depth int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%t\x00%d", root, suggestedOnly, depth))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

func parseHierarchyToken(tok string, root id.RoomID, suggestedOnly bool, depth int) (int, error) {
	num, digest, ok := strings.Cut(tok, "_")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 0 {
		return 0, merr.InvalidParam("unknown from token %q", tok)
	}
	if digest != hierarchyDigest(root, suggestedOnly, depth) {
		return 0, merr.InvalidParam("suggested_only and max_depth cannot change on paginated requests")
	}
	return n, nil
}

// FedHierarchy is the federation answer: the room and its direct children.
type FedHierarchy struct {
	Room         *HierarchyRoom
	Children     []*HierarchyRoom
	Inaccessible []string
}

// FedHierarchy answers a remote server's /hierarchy for one level. The room itself must be
// accessible to the server (else 404 M_NOT_FOUND, as the spec answers for a room the server
// cannot peek or join); children it cannot join or peek are listed by ID as inaccessible;
// children this server is not in are left out.
//
// A server may see a room that is world-readable, public, knockable or in which one of its
// users is joined or invited; a restricted room when one of its users is joined to an
// allowed room (the allowed_room_ids let it filter further for its user).
func (s *Service) FedHierarchy(ctx context.Context, server string, roomID id.RoomID, suggestedOnly bool) (*FedHierarchy, error) {
	out := &FedHierarchy{Children: []*HierarchyRoom{}, Inaccessible: []string{}}
	err := s.st.View(func(txn *store.Txn) error {
		nid, err := txn.RoomNID(roomID.String())
		if errors.Is(err, store.ErrNotFound) {
			return merr.NotFound("room %s is not known here", roomID)
		}
		if err != nil {
			return err
		}
		hr, children, err := s.hierarchyRoom(txn, nid, suggestedOnly)
		if err != nil {
			return err
		}
		if ok, err := s.serverMaySeeInHierarchy(txn, hr.Summary, server, nid); err != nil {
			return err
		} else if !ok {
			return merr.NotFound("room %s is not accessible to %s", roomID, server)
		}
		out.Room = hr
		for _, c := range children {
			cn, err := txn.RoomNID(c.StateKey)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			ch, _, err := s.hierarchyRoom(txn, cn, false)
			if err != nil {
				return err
			}
			ok, err := s.serverMaySeeInHierarchy(txn, ch.Summary, server, cn)
			if err != nil {
				return err
			}
			if ok {
				out.Children = append(out.Children, ch)
			} else {
				out.Inaccessible = append(out.Inaccessible, c.StateKey)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) serverMaySeeInHierarchy(txn *store.Txn, sum *Summary, server string, nid uint64) (bool, error) {
	if err := s.checkACL(txn, nid, server); err != nil {
		if _, ok := merr.As(err); ok {
			return false, nil // a server the room's ACL denies learns nothing of it
		}
		return false, err
	}
	switch sum.JoinRule {
	case "public", "knock", "knock_restricted":
		return true, nil
	}
	if sum.WorldReadable {
		return true, nil
	}
	v, err := newServerViewer(txn, nid, server)
	if err != nil {
		return false, err
	}
	if v.now.joined || v.now.invited {
		return true, nil
	}
	if sum.JoinRule != "restricted" {
		return false, nil
	}
	for _, r := range sum.AllowedRoomIDs {
		an, err := txn.RoomNID(r)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		av, err := newServerViewer(txn, an, server)
		if err != nil {
			return false, err
		}
		if av.now.joined {
			return true, nil
		}
	}
	return false, nil
}

// MarshalJSON renders the spec's hierarchy room chunk: the room summary with the fields the
// summary API adds (allowed_room_ids, encryption, room_version) and children_state.
func (r *HierarchyRoom) MarshalJSON() ([]byte, error) {
	cs := r.ChildrenState
	if cs == nil {
		cs = []ChildState{}
	}
	return json.Marshal(struct {
		*Summary
		AllowedRoomIDs []string     `json:"allowed_room_ids,omitempty"`
		Encryption     string       `json:"encryption,omitempty"`
		RoomVersion    string       `json:"room_version,omitempty"`
		ChildrenState  []ChildState `json:"children_state"`
	}{r.Summary, r.Summary.AllowedRoomIDs, r.Summary.Encryption, r.Summary.RoomVersion, cs})
}
