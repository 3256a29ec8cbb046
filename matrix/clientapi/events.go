package clientapi

import (
	"encoding/json/jsontext"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/events"
	"github.com/hearth-home/hearth/matrix/filter"
	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// Sending, redacting and reading room events (spec: room_send.yaml, redaction.yaml, rooms.yaml
// for the event by ID, message_pagination.yaml, event_context.yaml).

func (a *API) routesEvents(g *echo.Group) {
	a.both(g, http.MethodPut, "/rooms/:roomId/send/:eventType/:txnId", a.sendEvent, a.auth, a.rateLimited)
	a.both(g, http.MethodPut, "/rooms/:roomId/redact/:eventId/:txnId", a.redactEvent, a.auth, a.rateLimited)
	a.both(g, http.MethodGet, "/rooms/:roomId/event/:eventId", a.getEvent, a.auth)
	a.both(g, http.MethodGet, "/rooms/:roomId/messages", a.getMessages, a.auth)
	a.both(g, http.MethodGet, "/rooms/:roomId/context/:eventId", a.getContext, a.auth)
}

func eventIDArg(c echo.Context) (id.EventID, error) {
	v, err := pathArg(c, "eventId")
	if err != nil {
		return "", err
	}
	if len(v) < 2 || v[0] != '$' {
		return "", merr.InvalidParam("%q is not an event ID", v)
	}
	return id.EventID(v), nil
}

func (a *API) sendEvent(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	typ, err := pathArg(c, "eventType")
	if err != nil {
		return err
	}
	txnID, err := pathArg(c, "txnId")
	if err != nil {
		return err
	}
	if delay, ok, err := a.delayParam(c); ok || err != nil { // delayed.go (MSC4140)
		if err != nil {
			return err
		}
		return a.sendDelayed(c, delay, roomID, typ, nil, txnID, nil)
	}
	content, err := readObject(c)
	if err != nil {
		return err
	}
	sess := session(c)
	ctx := c.Request().Context()
	o := rooms.SendOpts{Device: sess.Device, TxnID: txnID}
	if o.TS, err = a.massagedTimestamp(c); err != nil {
		return err
	}
	var res *rooms.Appended
	if typ == "m.room.redaction" {
		// Allowed here in every room version (spec v1.18); the redaction rules still apply.
		res, err = a.rooms.SendRedaction(ctx, roomID, sess.User, jsontext.Value(content), o)
	} else {
		res, err = a.rooms.Send(ctx, roomID, events.Template{Type: typ, Sender: sess.User, Content: jsontext.Value(content)}, o)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"event_id": res.EventID.String()})
}

func (a *API) redactEvent(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	eventID, err := eventIDArg(c)
	if err != nil {
		return err
	}
	txnID, err := pathArg(c, "txnId")
	if err != nil {
		return err
	}
	var body struct {
		Reason *string `json:"reason"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	sess := session(c)
	res, err := a.rooms.Redact(c.Request().Context(), roomID, sess.User, eventID, deref(body.Reason), rooms.SendOpts{Device: sess.Device, TxnID: txnID})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"event_id": res.EventID.String()})
}

func (a *API) getEvent(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	eventID, err := eventIDArg(c)
	if err != nil {
		return err
	}
	ev, err := a.rooms.EventForUser(c.Request().Context(), session(c).User, roomID, eventID)
	if err != nil {
		return err
	}
	out, err := a.renderEvents(c, []*rooms.Event{ev})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out[0])
}

// intParam reads an optional non-negative integer query parameter.
func intParam(c echo.Context, name string, def int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, merr.InvalidParam("%s must be a non-negative integer", name)
	}
	return n, nil
}

// eventFilterParam reads the filter parameter of /messages and /context: a RoomEventFilter
// as JSON. Anything that does not decode as one is M_BAD_JSON.
func eventFilterParam(c echo.Context) (*filter.RoomEventFilter, error) {
	v := c.QueryParam("filter")
	if v == "" {
		return nil, nil
	}
	return filter.ParseRoomEventFilter([]byte(v))
}

type messagesResponse struct {
	Start string                `json:"start"`
	End   string                `json:"end,omitempty"`
	Chunk []*events.ClientEvent `json:"chunk"`
	State []*events.ClientEvent `json:"state,omitempty"`
}

func (a *API) getMessages(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	req := rooms.MessagesRequest{User: session(c).User, RoomID: roomID, From: c.QueryParam("from"), To: c.QueryParam("to")}
	switch dir := c.QueryParam("dir"); dir {
	case "b", "":
		// dir is required by the spec; older clients omit it and mean backwards (as Synapse
		// and sytest assume), so absence is read as "b" rather than refused.
		req.Backwards = true
	case "f":
	default:
		return merr.InvalidParam("dir must be b or f")
	}
	if req.Limit, err = intParam(c, "limit", 10); err != nil {
		return err
	}
	if req.Filter, err = eventFilterParam(c); err != nil {
		return err
	}
	if req.Filter != nil && req.Filter.Limit != nil && *req.Filter.Limit > 0 && *req.Filter.Limit < req.Limit {
		req.Limit = *req.Filter.Limit
	}
	if req.Limit == 0 {
		// Nothing asked for: answer at once, with no end since no events were read.
		if req.From != "" {
			if err := rooms.ValidPaginationToken(req.From); err != nil {
				return err
			}
		}
		return c.JSON(http.StatusOK, messagesResponse{Start: req.From, Chunk: []*events.ClientEvent{}})
	}
	page, err := a.rooms.Messages(c.Request().Context(), req)
	if err != nil {
		return err
	}
	resp := messagesResponse{Start: page.Start, End: page.End}
	if req.From != "" {
		resp.Start = req.From // the spec: start is the value given in from
	}
	if resp.Chunk, err = a.renderEvents(c, page.Events); err != nil {
		return err
	}
	if resp.State, err = a.renderEvents(c, page.State); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

type contextResponse struct {
	Start        string                `json:"start,omitempty"`
	End          string                `json:"end,omitempty"`
	EventsBefore []*events.ClientEvent `json:"events_before"`
	Event        *events.ClientEvent   `json:"event"`
	EventsAfter  []*events.ClientEvent `json:"events_after"`
	State        []*events.ClientEvent `json:"state"`
}

func (a *API) getContext(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	eventID, err := eventIDArg(c)
	if err != nil {
		return err
	}
	limit, err := intParam(c, "limit", 10)
	if err != nil {
		return err
	}
	f, err := eventFilterParam(c)
	if err != nil {
		return err
	}
	res, err := a.rooms.Context(c.Request().Context(), session(c).User, roomID, eventID, limit, f)
	if err != nil {
		return err
	}
	// With nothing asked for on a side, rooms.Context names the boundary at the event itself,
	// in the event's own order (a backfilled event's is not its stream position).
	// The filter applies to the state too (it is not applied to the event itself).
	var state []*rooms.Event
	for _, e := range res.State {
		if f.Match(roomID.String(), e.Lite.Type, e.Lite.Sender, e.Lite.Content) {
			state = append(state, e)
		}
	}
	resp := contextResponse{Start: res.Start, End: res.End}
	if resp.EventsBefore, err = a.renderEvents(c, res.Before); err != nil {
		return err
	}
	if resp.EventsAfter, err = a.renderEvents(c, res.After); err != nil {
		return err
	}
	if resp.State, err = a.renderEvents(c, state); err != nil {
		return err
	}
	ev, err := a.renderEvents(c, []*rooms.Event{res.Event})
	if err != nil {
		return err
	}
	resp.Event = ev[0]
	return c.JSON(http.StatusOK, resp)
}
