package fedapi

import (
	"encoding/json"
	"github.com/hearth-home/hearth/matrix/clientapi"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/federation"
)

// Joining, leaving and knocking through this server (spec: server-server API "Joining Rooms",
// "Leaving Rooms", "Knocking"): make_* hands out an unsigned template, send_* takes it back
// signed and appends it to the room.

// core holds the handlers that write rooms through the federation core.
type core struct {
	c    *federation.Service
	log  *slog.Logger
	txns txnCache
}

// RegisterCore mounts the writing endpoints (send, make/send join/leave/knock, invite) on g, the
// /_matrix/federation group, behind auth (the X-Matrix middleware).
func RegisterCore(g *echo.Group, svc *federation.Service, auth echo.MiddlewareFunc, log *slog.Logger) {
	h := &core{c: svc, log: log}
	mw := []echo.MiddlewareFunc{Errors(log), clientapi.UnescapeParams}
	if auth != nil {
		mw = append(mw, auth)
	}
	g.GET("/v1/make_join/:roomId/:userId", h.makeMembership("join"), mw...)
	g.GET("/v1/make_leave/:roomId/:userId", h.makeMembership("leave"), mw...)
	g.GET("/v1/make_knock/:roomId/:userId", h.makeMembership("knock"), mw...)
	g.PUT("/v2/send_join/:roomId/:eventId", h.sendJoin, mw...)
	g.PUT("/v2/send_leave/:roomId/:eventId", h.sendLeave, mw...)
	// The deprecated v1 forms answer [200, body]; older servers still call them.
	g.PUT("/v1/send_join/:roomId/:eventId", v1Answer(h.sendJoin), mw...)
	g.PUT("/v1/send_leave/:roomId/:eventId", v1Answer(h.sendLeave), mw...)
	g.PUT("/v1/send_knock/:roomId/:eventId", h.sendKnock, mw...)
	g.PUT("/v2/invite/:roomId/:eventId", h.invite, mw...)
	g.PUT("/v1/send/:txnId", h.send, mw...)
}

func (h *core) makeMembership(membership string) echo.HandlerFunc {
	return func(c echo.Context) error {
		origin, err := Origin(c)
		if err != nil {
			return err
		}
		roomID, err := roomIDParam(c)
		if err != nil {
			return err
		}
		user, err := userIDValue(c.Param("userId"))
		if err != nil {
			return err
		}
		var vers []id.RoomVersion
		for _, v := range c.QueryParams()["ver"] {
			vers = append(vers, id.RoomVersion(v))
		}
		ans, err := h.c.Make(c.Request().Context(), origin, roomID, user, membership, vers)
		if err != nil {
			return err
		}
		return ok(c, ans)
	}
}

// sendArgs reads the origin, room, event ID and raw event body of a send_* request.
func sendArgs(c echo.Context) (string, id.RoomID, id.EventID, json.RawMessage, error) {
	origin, err := Origin(c)
	if err != nil {
		return "", "", "", nil, err
	}
	roomID, err := roomIDParam(c)
	if err != nil {
		return "", "", "", nil, err
	}
	eventID, err := eventIDParam(c, "eventId")
	if err != nil {
		return "", "", "", nil, err
	}
	var raw json.RawMessage
	if err := readJSON(c, &raw); err != nil {
		return "", "", "", nil, err
	}
	return origin, roomID, eventID, raw, nil
}

func (h *core) sendJoin(c echo.Context) error {
	origin, roomID, eventID, raw, err := sendArgs(c)
	if err != nil {
		return err
	}
	omit, err := boolQuery(c, "omit_members")
	if err != nil {
		return err
	}
	ans, err := h.c.SendJoin(c.Request().Context(), origin, roomID, eventID, raw, omit)
	if err != nil {
		return err
	}
	return ok(c, ans)
}

func (h *core) sendLeave(c echo.Context) error {
	origin, roomID, eventID, raw, err := sendArgs(c)
	if err != nil {
		return err
	}
	if err := h.c.SendLeave(c.Request().Context(), origin, roomID, eventID, raw); err != nil {
		return err
	}
	return ok(c, struct{}{})
}

func (h *core) sendKnock(c echo.Context) error {
	origin, roomID, eventID, raw, err := sendArgs(c)
	if err != nil {
		return err
	}
	state, err := h.c.SendKnock(c.Request().Context(), origin, roomID, eventID, raw)
	if err != nil {
		return err
	}
	return ok(c, map[string]any{"knock_room_state": state})
}

func (h *core) invite(c echo.Context) error {
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
	var req federation.InviteRequest
	if err := readJSON(c, &req); err != nil {
		return err
	}
	signed, err := h.c.Invite(c.Request().Context(), origin, roomID, eventID, req)
	if err != nil {
		return err
	}
	return ok(c, map[string]any{"event": signed})
}

// v1Answer wraps a v2 handler's JSON answer in the v1 shape [200, body].
func v1Answer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rec := &v1Recorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		err := next(c)
		c.Response().Writer = rec.ResponseWriter
		if err != nil || !rec.ok {
			if rec.ok || rec.status != 0 {
				_, _ = rec.ResponseWriter.Write(rec.body)
			}
			return err
		}
		return c.JSONBlob(http.StatusOK, append(append([]byte("[200,"), rec.body...), ']'))
	}
}

// v1Recorder holds back a successful answer so that v1Answer can wrap it.
type v1Recorder struct {
	http.ResponseWriter
	status int
	ok     bool
	body   []byte
}

func (r *v1Recorder) WriteHeader(code int) {
	r.status = code
	r.ok = code == http.StatusOK
	if !r.ok {
		r.ResponseWriter.WriteHeader(code)
	}
}

func (r *v1Recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if r.ok {
		r.body = append(r.body, b...)
		return len(b), nil
	}
	return r.ResponseWriter.Write(b)
}
