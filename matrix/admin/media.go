package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hearth-home/hearth/matrix/media"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Media administration: listing, deletion and quarantine of local media, with the shapes of
// Synapse's admin media API. The content repository itself is matrix/media; this file adds
// who may be listed, which media a room refers to and which media is an avatar.

// Media is the admin view of the content repository.
type Media struct {
	s *Service
	m *media.Service
}

// Media binds the admin service to the content repository.
func (s *Service) Media(m *media.Service) *Media { return &Media{s: s, m: m} }

// MediaInfo is one media item as Synapse lists it.
type MediaInfo struct {
	MediaID            string  `json:"media_id"`
	MediaType          string  `json:"media_type"`
	MediaLength        int64   `json:"media_length"`
	UploadName         *string `json:"upload_name"`
	CreatedTS          int64   `json:"created_ts"`
	LastAccessTS       *int64  `json:"last_access_ts"`
	QuarantinedBy      *string `json:"quarantined_by"`
	SafeFromQuarantine bool    `json:"safe_from_quarantine"`
}

func mediaInfo(e media.Entry) MediaInfo {
	mi := MediaInfo{MediaID: e.ID, MediaType: e.ContentType, MediaLength: e.Size, UploadName: strp(e.Filename), CreatedTS: e.CreatedMS}
	if e.UploadedMS != 0 {
		ts := e.UploadedMS // no access tracking: the upload is the last time the content changed hands
		mi.LastAccessTS = &ts
	}
	if e.Quarantine != nil {
		mi.QuarantinedBy = &e.Quarantine.By
	}
	return mi
}

// MediaQuery selects a page of a user's media (GET and DELETE /users/{userId}/media).
type MediaQuery struct {
	From      int
	Limit     int
	OrderBy   string // created_ts (default), media_id, upload_name, last_access_ts, media_length, media_type, quarantined_by, safe_from_quarantine
	Backwards bool
}

// mediaOrder returns the comparison for order_by; ties are broken by media ID ascending,
// as Synapse does, so that paging is stable.
func mediaOrder(by string) (func(a, b MediaInfo) int, error) {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	num := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	cmp3 := func(x, y int64) int {
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	switch by {
	case "", "created_ts":
		return func(a, b MediaInfo) int { return cmp3(a.CreatedTS, b.CreatedTS) }, nil
	case "media_id":
		return func(a, b MediaInfo) int { return strings.Compare(a.MediaID, b.MediaID) }, nil
	case "upload_name":
		return func(a, b MediaInfo) int { return strings.Compare(str(a.UploadName), str(b.UploadName)) }, nil
	case "last_access_ts":
		return func(a, b MediaInfo) int { return cmp3(num(a.LastAccessTS), num(b.LastAccessTS)) }, nil
	case "media_length":
		return func(a, b MediaInfo) int { return cmp3(a.MediaLength, b.MediaLength) }, nil
	case "media_type":
		return func(a, b MediaInfo) int { return strings.Compare(a.MediaType, b.MediaType) }, nil
	case "quarantined_by":
		return func(a, b MediaInfo) int { return strings.Compare(str(a.QuarantinedBy), str(b.QuarantinedBy)) }, nil
	case "safe_from_quarantine":
		return func(a, b MediaInfo) int { return 0 }, nil // never set on Hearth
	}
	return nil, merr.InvalidParam("unknown value for order_by: %q", by)
}

// UserMedia returns one page of the media a local user uploaded, and how many there are.
func (a *Media) UserMedia(ctx context.Context, user string, q MediaQuery) ([]MediaInfo, int, error) {
	all, err := a.userMedia(ctx, user, q.OrderBy, q.Backwards)
	if err != nil {
		return nil, 0, err
	}
	from := min(q.From, len(all))
	to := min(from+q.Limit, len(all))
	return all[from:to], len(all), nil
}

func (a *Media) userMedia(ctx context.Context, user, orderBy string, backwards bool) ([]MediaInfo, error) {
	order, err := mediaOrder(orderBy)
	if err != nil {
		return nil, err
	}
	lp, err := a.s.LocalUser(user)
	if err != nil {
		return nil, err
	}
	if _, err := a.s.acc.User(ctx, lp); errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("unknown user")
	} else if err != nil {
		return nil, err
	}
	entries, err := a.m.UserEntries(ctx, user)
	if err != nil {
		return nil, err
	}
	list := make([]MediaInfo, len(entries))
	for i, e := range entries {
		list[i] = mediaInfo(e)
	}
	sort.SliceStable(list, func(i, j int) bool {
		c := order(list[i], list[j])
		if backwards {
			c = -c
		}
		if c == 0 {
			return list[i].MediaID < list[j].MediaID
		}
		return c < 0
	})
	return list, nil
}

// DeleteUserMedia deletes the page of a user's media that UserMedia would list.
func (a *Media) DeleteUserMedia(ctx context.Context, user string, q MediaQuery) ([]string, error) {
	page, _, err := a.UserMedia(ctx, user, q)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(page))
	for i, m := range page {
		ids[i] = m.MediaID
	}
	return a.m.Delete(ctx, ids)
}

// DeleteOne deletes one local media item.
func (a *Media) DeleteOne(ctx context.Context, serverName, mediaID string) ([]string, error) {
	if serverName != a.m.ServerName() {
		return nil, merr.InvalidParam("can only delete local media")
	}
	if _, err := a.m.Entry(ctx, serverName, mediaID); err != nil {
		return nil, err
	}
	return a.m.Delete(ctx, []string{mediaID})
}

// DeleteBefore deletes local media uploaded before beforeMS (unix milliseconds) and larger
// than sizeGT bytes. With keepProfiles, media used as a user's or a room's avatar stays.
func (a *Media) DeleteBefore(ctx context.Context, serverName string, beforeMS, sizeGT int64, keepProfiles bool) ([]string, error) {
	if serverName != "" && serverName != a.m.ServerName() {
		return nil, merr.InvalidParam("can only delete local media")
	}
	keep := map[string]bool{}
	if keepProfiles {
		var err error
		if keep, err = a.avatars(ctx); err != nil {
			return nil, err
		}
	}
	ids, err := a.m.Select(ctx, func(r *store.MediaRecord) bool {
		ts := r.UploadedMS
		if ts == 0 {
			ts = r.CreatedMS
		}
		return ts < beforeMS && r.Size > sizeGT && !keep[r.ID]
	})
	if err != nil {
		return nil, err
	}
	return a.m.Delete(ctx, ids)
}

// avatars returns the local media IDs used as user avatars or as room avatars.
func (a *Media) avatars(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	add := func(uri string) {
		if srv, mid, ok := media.ParseMXC(uri); ok && srv == a.m.ServerName() {
			out[mid] = true
		}
	}
	users, err := a.s.acc.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: list users: %w", err)
	}
	for _, u := range users {
		add(u.AvatarURL)
	}
	err = a.s.st.View(func(t *store.Txn) error {
		sk, err := t.StateKeyNID("m.room.avatar", "", false)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return t.Rooms(func(nid uint64, _ *store.RoomRecord) (bool, error) {
			pos, err := t.CurrentState(nid, sk)
			if errors.Is(err, store.ErrNotFound) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			rec, err := t.Event(pos)
			if err != nil {
				return true, nil // purged or missing: nothing to keep
			}
			for _, u := range mediaRefs(rec.PDU) {
				add(u)
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("admin: room avatars: %w", err)
	}
	return out, nil
}

// Quarantine quarantines (on) or releases one local media item. Copies of remote media in
// the cache are not covered yet: they answer 404.
func (a *Media) Quarantine(ctx context.Context, admin, serverName, mediaID string, on bool) error {
	if !a.m.IsLocal(serverName, mediaID) {
		return merr.NotFound("media not found")
	}
	by := ""
	if on {
		by = admin
	}
	found, err := a.m.SetQuarantine(ctx, mediaID, by)
	if err != nil {
		return err
	}
	if !found {
		return merr.NotFound("media not found")
	}
	return nil
}

// QuarantineUser quarantines every media item a local user uploaded and returns how many.
func (a *Media) QuarantineUser(ctx context.Context, admin, user string) (int, error) {
	list, err := a.userMedia(ctx, user, "", false)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range list {
		if ok, err := a.m.SetQuarantine(ctx, m.MediaID, admin); err != nil {
			return n, err
		} else if ok {
			n++
		}
	}
	return n, nil
}

// RoomMedia lists the mxc:// URIs the room's events refer to, local and remote.
func (a *Media) RoomMedia(ctx context.Context, roomID string) (local, remote []string, err error) {
	if _, err := a.s.GetRoom(ctx, roomID); err != nil {
		return nil, nil, err
	}
	local, remote = []string{}, []string{}
	seen := map[string]bool{}
	err = a.s.st.View(func(t *store.Txn) error {
		nid, err := t.RoomNID(roomID)
		if err != nil {
			return err
		}
		return t.Timeline(nid, 0, false, func(pos uint64) (bool, error) {
			rec, err := t.Event(pos)
			if errors.Is(err, store.ErrNotFound) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			for _, u := range mediaRefs(rec.PDU) {
				srv, _, ok := media.ParseMXC(u)
				if !ok || seen[u] {
					continue
				}
				seen[u] = true
				if srv == a.m.ServerName() {
					local = append(local, u)
				} else {
					remote = append(remote, u)
				}
			}
			return true, ctx.Err()
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("admin: room media: %w", err)
	}
	return local, remote, nil
}

// QuarantineRoom quarantines the local media the room's events refer to and returns how many
// items were quarantined.
func (a *Media) QuarantineRoom(ctx context.Context, admin, roomID string) (int, error) {
	local, _, err := a.RoomMedia(ctx, roomID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range local {
		_, mid, _ := media.ParseMXC(u)
		if ok, err := a.m.SetQuarantine(ctx, mid, admin); err != nil {
			return n, err
		} else if ok {
			n++
		}
	}
	return n, nil
}

// mediaRefs returns the mxc:// URIs an event's content refers to: content.url (files,
// images, room avatars), content.info.thumbnail_url, and the url of encrypted attachments
// (content.file, content.info.thumbnail_file) — where Synapse also looks, plus encryption.
func mediaRefs(pdu json.RawMessage) []string {
	// Maps rather than structs: one field of an unexpected type must not hide the others.
	var ev struct {
		Content map[string]any `json:"content"`
	}
	if json.Unmarshal(pdu, &ev) != nil {
		return nil
	}
	var out []string
	add := func(v any) {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "mxc://") {
			out = append(out, s)
		}
	}
	sub := func(m map[string]any, k string) map[string]any {
		v, _ := m[k].(map[string]any)
		return v
	}
	c := ev.Content
	add(c["url"])
	add(sub(c, "file")["url"])
	info := sub(c, "info")
	add(info["thumbnail_url"])
	add(sub(info, "thumbnail_file")["url"])
	return out
}
