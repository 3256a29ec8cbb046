package fedapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/rooms"
)

// Retrieving events (spec: server-server "Retrieving events", events.yaml, event_auth.yaml):
// one event, the state before an event with its auth chain (in full or as IDs), and one
// event's auth chain. Access: the room's server ACL, then the history visibility of the event
// for the requesting server (rooms.ServerViewer).

func (a *api) routesEvents(g *echo.Group, mw []echo.MiddlewareFunc) {
	g.GET("/v1/state/:roomId", a.state, mw...)
	g.GET("/v1/state_ids/:roomId", a.stateIDs, mw...)
	g.GET("/v1/event/:eventId", a.event, mw...)
	g.GET("/v1/event_auth/:roomId/:eventId", a.eventAuth, mw...)
}

// pdus returns the stored PDUs as they were signed (redacted ones in their redacted form).
func pdus(evs []*rooms.Event) []any {
	out := make([]any, 0, len(evs))
	for _, e := range evs {
		out = append(out, json.RawMessage(e.Rec.PDU))
	}
	return out
}

func ids(evs []*rooms.Event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Rec.ID)
	}
	return out
}

func (a *api) stateAt(c echo.Context) (*rooms.FedState, error) {
	origin, err := Origin(c)
	if err != nil {
		return nil, err
	}
	roomID, err := roomIDParam(c)
	if err != nil {
		return nil, err
	}
	eventID, err := eventIDQuery(c, "event_id")
	if err != nil {
		return nil, err
	}
	return a.d.Rooms.FedStateAt(c.Request().Context(), origin, roomID, eventID)
}

func (a *api) state(c echo.Context) error {
	st, err := a.stateAt(c)
	if err != nil {
		return err
	}
	return ok(c, map[string]any{"pdus": pdus(st.State), "auth_chain": pdus(st.AuthChain)})
}

func (a *api) stateIDs(c echo.Context) error {
	st, err := a.stateAt(c)
	if err != nil {
		return err
	}
	return ok(c, map[string]any{"pdu_ids": ids(st.State), "auth_chain_ids": ids(st.AuthChain)})
}

func (a *api) event(c echo.Context) error {
	origin, err := Origin(c)
	if err != nil {
		return err
	}
	eventID, err := eventIDParam(c, "eventId")
	if err != nil {
		return err
	}
	ev, err := a.d.Rooms.FedEvent(c.Request().Context(), origin, eventID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.transaction(pdus([]*rooms.Event{ev})))
}

func (a *api) eventAuth(c echo.Context) error {
	origin, err := Origin(c)
	if err != nil {
		return err
	}
	roomID, err := roomIDParam(c)
	if err != nil {
		return err
	}
	eventID, err := eventIDParam(c, "eventId")
	if err != nil {
		return err
	}
	chain, err := a.d.Rooms.FedEventAuth(c.Request().Context(), origin, roomID, eventID)
	if err != nil {
		return err
	}
	return ok(c, map[string]any{"auth_chain": pdus(chain)})
}
