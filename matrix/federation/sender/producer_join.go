package sender

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/hearth-home/hearth/matrix/change"
)

// Device lists on joins. The spec (server-server API, "Device management") has a user's
// server send m.device_list_update "when that user joins a room which contains servers which
// are not already receiving updates for that user's device list": a server that shares no
// other room with the user has never heard of their devices, and would otherwise learn of
// them only at the next device change. So a local user's join re-announces each of their
// devices (and their cross-signing keys) to the servers of that room that share none of the
// user's other rooms.

// localJoin reports whether a change is a join of a local user (a membership event whose
// target is one of ours, joined) that the producer should act on.
func (p *Producer) localJoin(c change.Change) bool {
	return p.o.Devices != nil && p.o.UserRooms != nil && c.EventType == "m.room.member" &&
		c.Membership == "join" && c.StateKey != nil && c.RoomID != "" && ServerOf(*c.StateKey) == p.o.ServerName
}

// joinAnnounce sends every device of k.User to the servers of k.RoomID that hear of the user
// through no other room. A profile change (a join following a join) finds those servers
// already told, unless this is the only room shared with them, where a repeat is harmless:
// receivers apply an update chaining onto what they hold and resync otherwise.
func (p *Producer) joinAnnounce(ctx context.Context, k workKey) error {
	servers, err := p.o.Rooms.JoinedServers(ctx, k.RoomID)
	if err != nil {
		return fmt.Errorf("servers in %s: %w", k.RoomID, err)
	}
	rooms, err := p.o.UserRooms.JoinedRooms(ctx, k.User)
	if err != nil {
		return fmt.Errorf("rooms of %s: %w", k.User, err)
	}
	told := map[string]bool{p.o.ServerName: true}
	for _, r := range rooms {
		if r == k.RoomID {
			continue
		}
		ss, err := p.o.Rooms.JoinedServers(ctx, r)
		if err != nil {
			return fmt.Errorf("servers in %s: %w", r, err)
		}
		for _, s := range ss {
			told[s] = true
		}
	}
	dests := slices.DeleteFunc(slices.Clone(servers), func(s string) bool { return told[s] })
	if len(dests) == 0 {
		return nil
	}
	ids, err := p.o.Devices.DeviceIDs(ctx, k.User)
	if err != nil {
		return fmt.Errorf("devices of %s: %w", k.User, err)
	}
	sort.Strings(ids)
	edus := make([]EDU, 0, len(ids)+1)
	for _, dev := range ids {
		e, err := p.deviceUpdate(ctx, k.User, dev)
		if err != nil {
			return err
		}
		edus = append(edus, e)
	}
	master, self, err := p.o.Devices.CrossSigningKeys(ctx, k.User)
	if err != nil {
		return fmt.Errorf("cross-signing keys of %s: %w", k.User, err)
	}
	if len(master) > 0 || len(self) > 0 {
		e, err := SigningKeyUpdate(k.User, master, self)
		if err != nil {
			return err
		}
		edus = append(edus, e)
	}
	if len(edus) == 0 {
		return nil
	}
	return p.o.Sender.Enqueue(dests, nil, edus)
}
