package rooms

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/id"
)

// Remote answers to federation GET /v1/hierarchy/{roomId}, as the client walk uses them.

// RemoteHierarchy is another server's one-level description of a space: the room, the
// summaries of the children it would describe, and the children it would not.
type RemoteHierarchy struct {
	Room         *HierarchyRoom
	Children     []*HierarchyRoom
	Inaccessible []string
}

// HierarchyFetcher asks the servers in via, in turn, for one level of the space tree under
// roomID (federation /hierarchy). An error means no server described the room. Set by the
// federation layer, which may answer from a short cache.
type HierarchyFetcher func(ctx context.Context, via []string, roomID id.RoomID, suggestedOnly bool) (*RemoteHierarchy, error)

// SetHierarchyFetcher installs the remote part of the client walk. Call before serving.
func (s *Service) SetHierarchyFetcher(f HierarchyFetcher) { s.hierFetch = f }

// remoteRoomChunk is a room chunk as another server sends it.
type remoteRoomChunk struct {
	RoomID           string            `json:"room_id"`
	Name             string            `json:"name"`
	Topic            string            `json:"topic"`
	CanonicalAlias   string            `json:"canonical_alias"`
	AvatarURL        string            `json:"avatar_url"`
	NumJoinedMembers int               `json:"num_joined_members"`
	WorldReadable    bool              `json:"world_readable"`
	GuestCanJoin     bool              `json:"guest_can_join"`
	JoinRule         string            `json:"join_rule"`
	RoomType         string            `json:"room_type"`
	AllowedRoomIDs   []string          `json:"allowed_room_ids"`
	Encryption       string            `json:"encryption"`
	RoomVersion      string            `json:"room_version"`
	ChildrenState    []json.RawMessage `json:"children_state"`
}

// ParseRemoteHierarchy decodes a federation /hierarchy answer for roomID. The room must be
// the one asked for; children that are malformed are dropped, as are child links that are
// not valid m.space.child events, so that nothing a remote server sends can break the walk.
func ParseRemoteHierarchy(body []byte, roomID id.RoomID) (*RemoteHierarchy, error) {
	var raw struct {
		Room         json.RawMessage   `json:"room"`
		Children     []json.RawMessage `json:"children"`
		Inaccessible []any             `json:"inaccessible_children"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("hierarchy answer: %w", err)
	}
	room, err := parseRemoteRoom(raw.Room)
	if err != nil {
		return nil, fmt.Errorf("hierarchy answer: room: %w", err)
	}
	if room.Summary.RoomID != roomID.String() {
		return nil, fmt.Errorf("hierarchy answer describes %s, not %s", room.Summary.RoomID, roomID)
	}
	out := &RemoteHierarchy{Room: room, Children: []*HierarchyRoom{}, Inaccessible: []string{}}
	for _, c := range raw.Children {
		if ch, err := parseRemoteRoom(c); err == nil {
			out.Children = append(out.Children, ch)
		}
	}
	for _, r := range raw.Inaccessible {
		if s, ok := r.(string); ok && strings.HasPrefix(s, "!") {
			out.Inaccessible = append(out.Inaccessible, s)
		}
	}
	return out, nil
}

func parseRemoteRoom(b json.RawMessage) (*HierarchyRoom, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("missing")
	}
	var c remoteRoomChunk
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(c.RoomID, "!") {
		return nil, fmt.Errorf("bad room_id %q", c.RoomID)
	}
	if c.JoinRule == "" {
		c.JoinRule = "public" // the spec's default for a chunk without one
	}
	hr := &HierarchyRoom{Summary: &Summary{
		RoomID: c.RoomID, Name: c.Name, Topic: c.Topic, CanonicalAlias: c.CanonicalAlias, AvatarURL: c.AvatarURL,
		NumJoinedMembers: c.NumJoinedMembers, WorldReadable: c.WorldReadable, GuestCanJoin: c.GuestCanJoin,
		JoinRule: c.JoinRule, RoomType: c.RoomType, AllowedRoomIDs: c.AllowedRoomIDs, Encryption: c.Encryption,
		RoomVersion: c.RoomVersion,
	}, ChildrenState: []ChildState{}}
	for _, e := range c.ChildrenState {
		var cs ChildState
		if json.Unmarshal(e, &cs) != nil {
			continue
		}
		if _, ok := parseChild(cs); ok {
			hr.ChildrenState = append(hr.ChildrenState, cs)
		}
	}
	return hr, nil
}
