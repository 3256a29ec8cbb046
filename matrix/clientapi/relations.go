package clientapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// Event relationships and threads (spec: relations.yaml, threads_list.yaml). Every event
// these return carries its bundled aggregations (rooms.Aggregator, via renderEvents).

func (a *API) routesRelations(g *echo.Group) {
	for _, p := range []string{
		"/v1/rooms/:roomId/relations/:eventId",
		"/v1/rooms/:roomId/relations/:eventId/:relType",
		"/v1/rooms/:roomId/relations/:eventId/:relType/:eventType",
	} {
		g.GET(p, a.getRelations, a.auth)
	}
	g.GET("/v1/rooms/:roomId/threads", a.getThreads, a.auth)
}

type relationsResponse struct {
	Chunk          []*events.ClientEvent `json:"chunk"`
	NextBatch      string                `json:"next_batch,omitempty"`
	PrevBatch      string                `json:"prev_batch,omitempty"`
	RecursionDepth *int                  `json:"recursion_depth,omitempty"`
}

func (a *API) getRelations(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	eventID, err := eventIDArg(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	req := rooms.RelationsRequest{User: session(c).User, RoomID: roomID, EventID: eventID,
		RelType: c.Param("relType"), EventType: c.Param("eventType"), From: q.Get("from"), To: q.Get("to")}
	switch q.Get("dir") {
	case "", "b":
		req.Backwards = true
	case "f":
	default:
		return merr.InvalidParam("dir must be b or f")
	}
	if req.Limit, err = intParam(c, "limit", 10); err != nil {
		return err
	}
	var depth *int
	if q.Has("recurse") {
		switch q.Get("recurse") {
		case "true":
			req.Recurse = true
			d := rooms.RecursionDepth
			depth = &d
		case "false":
			d := 1 // direct relations only
			depth = &d
		default:
			return merr.InvalidParam("recurse must be true or false")
		}
	}
	page, err := a.rooms.Relations(c.Request().Context(), req)
	if err != nil {
		return err
	}
	resp := relationsResponse{NextBatch: page.NextBatch, PrevBatch: page.PrevBatch, RecursionDepth: depth}
	if resp.Chunk, err = a.renderEvents(c, page.Events); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

type threadsResponse struct {
	Chunk     []*events.ClientEvent `json:"chunk"`
	NextBatch string                `json:"next_batch,omitempty"`
}

func (a *API) getThreads(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	req := rooms.ThreadsRequest{User: session(c).User, RoomID: roomID, From: q.Get("from")}
	switch q.Get("include") {
	case "", "all":
	case "participated":
		req.Participated = true
	default:
		return merr.InvalidParam("include must be all or participated")
	}
	if q.Has("limit") {
		if req.Limit, err = intParam(c, "limit", 0); err != nil || req.Limit == 0 {
			return merr.InvalidParam("limit must be an integer greater than zero")
		}
	}
	page, err := a.rooms.Threads(c.Request().Context(), req)
	if err != nil {
		return err
	}
	resp := threadsResponse{NextBatch: page.NextBatch}
	if resp.Chunk, err = a.renderEvents(c, page.Events); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

// threadIDParam reads a receipt's thread_id: absent (unthreaded), "main" or a thread root's
// event ID; anything else is M_INVALID_PARAM. Whether the root exists is the receipt store's
// check.
func threadIDParam(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return "", merr.InvalidParam("thread_id field must be a non-empty string")
	}
	if s != "main" && s[0] != '$' {
		return "", merr.InvalidParam("thread_id must be main or the event ID of a thread root")
	}
	return s, nil
}
