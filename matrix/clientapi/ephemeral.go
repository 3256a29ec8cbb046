package clientapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

func (a *API) routesEphemeral(g *echo.Group) {
	a.both(g, http.MethodPut, "/rooms/:roomId/typing/:userId", a.putTyping, a.auth)
	a.both(g, http.MethodPost, "/rooms/:roomId/receipt/:receiptType/:eventId", a.postReceipt, a.auth)
	a.both(g, http.MethodPost, "/rooms/:roomId/read_markers", a.postReadMarkers, a.auth)
}

func (a *API) putTyping(c echo.Context) error {
	u, err := ownUser(c)
	if err != nil {
		return err
	}
	var body struct {
		Typing  *bool  `json:"typing"`
		Timeout *int64 `json:"timeout"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.Typing == nil {
		return merr.BadJSON("missing typing")
	}
	var timeout time.Duration
	if body.Timeout != nil {
		timeout = time.Duration(*body.Timeout) * time.Millisecond
	}
	if err := a.eph.SetTyping(c.Request().Context(), id.RoomID(c.Param("roomId")), u, *body.Typing, timeout); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) postReceipt(c echo.Context) error {
	sess := session(c)
	typ := c.Param("receiptType")
	var body struct {
		ThreadID any `json:"thread_id"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	threadID, err := threadIDParam(body.ThreadID) // relations.go
	if err != nil {
		return err
	}
	roomID := id.RoomID(c.Param("roomId"))
	eventID := id.EventID(c.Param("eventId"))
	ctx := c.Request().Context()
	switch typ {
	case "m.read", "m.read.private":
		if err := a.eph.PutReceipt(ctx, roomID, sess.User, typ, eventID, threadID); err != nil {
			return err
		}
	case "m.fully_read":
		if body.ThreadID != nil {
			return merr.InvalidParam("m.fully_read does not take a thread_id")
		}
		if err := a.setFullyRead(c, roomID, eventID); err != nil {
			return err
		}
	default:
		return merr.InvalidParam("unknown receipt type %q", typ)
	}
	return noContent(c)
}

func (a *API) setFullyRead(c echo.Context, roomID id.RoomID, eventID id.EventID) error {
	sess := session(c)
	ctx := c.Request().Context()
	if _, err := a.rooms.EventForUser(ctx, sess.User, roomID, eventID); err != nil {
		return err
	}
	nid, err := a.roomNID(roomID)
	if err != nil {
		return err
	}
	content, _ := json.Marshal(map[string]string{"event_id": eventID.String()})
	return a.accounts.PutServerAccountData(ctx, sess.User, nid, roomID.String(), "m.fully_read", content)
}

func (a *API) postReadMarkers(c echo.Context) error {
	sess := session(c)
	var body struct {
		FullyRead   id.EventID `json:"m.fully_read"`
		Read        id.EventID `json:"m.read"`
		ReadPrivate id.EventID `json:"m.read.private"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	roomID := id.RoomID(c.Param("roomId"))
	ctx := c.Request().Context()
	if body.FullyRead != "" {
		if err := a.setFullyRead(c, roomID, body.FullyRead); err != nil {
			return err
		}
	}
	if body.Read != "" {
		if err := a.eph.PutReceipt(ctx, roomID, sess.User, "m.read", body.Read, ""); err != nil {
			return err
		}
	}
	if body.ReadPrivate != "" {
		if err := a.eph.PutReceipt(ctx, roomID, sess.User, "m.read.private", body.ReadPrivate, ""); err != nil {
			return err
		}
	}
	return noContent(c)
}
