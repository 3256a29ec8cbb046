package admin

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
	"github.com/hearth-home/hearth/matrix/search"
	"github.com/hearth-home/hearth/matrix/store"
)

// Purging room history (POST /_synapse/admin/v1/purge_history). The purge runs within the
// request, in batches (matrix/rooms/purge.go); its outcome is stored under a purge ID so that
// scripts written for Synapse, which poll purge_history_status, work unchanged, also after a
// restart.

// PurgeBody is the body of a purge_history request.
type PurgeBody struct {
	DeleteLocalEvents bool   `json:"delete_local_events"`
	PurgeUpToEventID  string `json:"purge_up_to_event_id"`
	PurgeUpToTS       *int64 `json:"purge_up_to_ts"`
}

// PurgeHistory purges a room's history before the event named in the path (eventID), in the
// body, or before a timestamp, and returns the purge ID. A purge that fails part-way is
// recorded as failed (what was deleted stays deleted) and its error is returned as well.
func (s *Service) PurgeHistory(ctx context.Context, roomID, eventID string, body PurgeBody) (string, error) {
	if !strings.HasPrefix(roomID, "!") {
		return "", merr.InvalidParam("invalid room ID %q", roomID)
	}
	req := rooms.PurgeRequest{RoomID: id.RoomID(roomID), DeleteLocal: body.DeleteLocalEvents, Tokens: searchTokens}
	switch {
	case eventID != "":
		req.UpToEventID = eventID
	case body.PurgeUpToEventID != "":
		req.UpToEventID = body.PurgeUpToEventID
	case body.PurgeUpToTS != nil:
		if *body.PurgeUpToTS < 0 {
			return "", merr.InvalidParam("purge_up_to_ts must not be negative")
		}
		req.UpToTS = *body.PurgeUpToTS
	default:
		return "", merr.MissingParam("must specify purge_up_to_event_id or purge_up_to_ts")
	}
	if req.UpToEventID != "" && !strings.HasPrefix(req.UpToEventID, "$") {
		return "", merr.InvalidParam("invalid event ID %q", req.UpToEventID)
	}
	// A client that gives up waiting must not leave the purge half done.
	n, err := s.rooms.PurgeHistory(context.WithoutCancel(ctx), req)
	var me *merr.Error
	if errors.As(err, &me) && n == 0 {
		return "", err // bad request: nothing happened, nothing to remember
	}
	purgeID := rand.Text()
	rec := store.PurgeRecord{RoomID: roomID, Status: store.PurgeComplete, Purged: n, TS: time.Now().UnixMilli()}
	if err != nil {
		rec.Status, rec.Error = store.PurgeFailed, err.Error()
	}
	if serr := s.st.Update(func(t *store.Txn) error { return t.PutPurge(purgeID, rec) }); serr != nil {
		return "", fmt.Errorf("admin: record purge: %w", serr)
	}
	return purgeID, err
}

// PurgeStatus is the answer of purge_history_status.
type PurgeStatus struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// PurgeStatus returns the outcome of a purge.
func (s *Service) PurgeStatus(ctx context.Context, purgeID string) (*PurgeStatus, error) {
	var rec store.PurgeRecord
	err := s.st.View(func(t *store.Txn) (err error) { rec, err = t.Purge(purgeID); return })
	if errors.Is(err, store.ErrNotFound) {
		return nil, merr.NotFound("purge id %q not found", purgeID)
	}
	if err != nil {
		return nil, fmt.Errorf("admin: read purge: %w", err)
	}
	return &PurgeStatus{Status: rec.Status, Error: rec.Error}, nil
}

// searchTokens returns every token the search index could hold for an event: the words of
// content.body, content.name and content.topic. Postings that were never written are simply
// not found when deleted, so taking all three fields is safe and needs no copy of the
// indexer's rules.
func searchTokens(rec *store.EventRecord) []string {
	var ev struct {
		Content map[string]any `json:"content"`
	}
	if json.Unmarshal(rec.PDU, &ev) != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, k := range []string{"body", "name", "topic"} {
		str, _ := ev.Content[k].(string)
		for _, tok := range search.Tokens(str) {
			if !seen[tok] {
				seen[tok] = true
				out = append(out, tok)
			}
		}
	}
	return out
}
