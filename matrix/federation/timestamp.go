package federation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/rooms"
)

// Jump to date on other servers: GET /_matrix/federation/v1/timestamp_to_event/{roomId} asked
// of the servers in the room, in turn, when this server's history cannot answer
// (rooms/timestamp.go decides when, and backfills the answer).

const (
	timestampServersMax = 5 // servers tried per lookup
	timestampTimeout    = 10 * time.Second
)

// remoteTimestamp is the rooms.TimestampFetcher.
func (s *Service) remoteTimestamp(ctx context.Context, roomID id.RoomID, ts int64, forwards bool) (*rooms.TimestampResult, error) {
	servers, err := s.rooms.JoinedServers(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("timestamp_to_event: servers of %s: %w", roomID, err)
	}
	dir := "b"
	if forwards {
		dir = "f"
	}
	lastErr := errors.New("no other server in the room")
	for i, srv := range candidates(s.server, servers) {
		if i == timestampServersMax || ctx.Err() != nil {
			break
		}
		r, err := s.askTimestamp(ctx, srv, roomID, ts, dir)
		if err != nil {
			lastErr = err
			continue
		}
		return r, nil
	}
	return nil, fmt.Errorf("timestamp_to_event in %s: %w", roomID, lastErr)
}

func (s *Service) askTimestamp(ctx context.Context, srv string, roomID id.RoomID, ts int64, dir string) (*rooms.TimestampResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timestampTimeout)
	defer cancel()
	var resp struct {
		EventID        id.EventID `json:"event_id"`
		OriginServerTS *int64     `json:"origin_server_ts"`
	}
	_, _, err := s.client.MakeFullRequest(ctx, mfed.RequestParams{
		ServerName:   srv,
		Method:       http.MethodGet,
		Path:         mfed.URLPath{"v1", "timestamp_to_event", roomID},
		Query:        url.Values{"ts": {strconv.FormatInt(ts, 10)}, "dir": {dir}},
		Authenticate: true,
		ResponseJSON: &resp,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", srv, err)
	}
	if resp.EventID == "" || resp.OriginServerTS == nil {
		return nil, fmt.Errorf("%s: answer without event_id or origin_server_ts", srv)
	}
	return &rooms.TimestampResult{EventID: resp.EventID, OriginServerTS: *resp.OriginServerTS}, nil
}
