package clientapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/store"
)

// Reporting content (spec: report_content.yaml). Reports are stored for the server's admins,
// who read event reports through Synapse's admin API (the shape admin tools expect).

func (a *API) routesReports(e *echo.Echo, g *echo.Group) {
	a.both(g, http.MethodPost, "/rooms/:roomId/report/:eventId", a.reportEvent, a.auth, a.rateLimited)
	a.both(g, http.MethodPost, "/rooms/:roomId/report", a.reportRoom, a.auth, a.rateLimited)
	a.both(g, http.MethodPost, "/users/:userId/report", a.reportUser, a.auth, a.rateLimited)
	e.GET("/_synapse/admin/v1/event_reports", a.listEventReports, a.auth)
}

// reportBody is every report's body. reason is optional here even where the spec marks it
// required ("may be blank"), since clients leave an empty one out.
type reportBody struct {
	Reason *string `json:"reason"`
	Score  *int    `json:"score"` // removed in v1.18; accepted and ignored
}

func (a *API) reportEvent(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	eventID, err := eventIDArg(c)
	if err != nil {
		return err
	}
	var body reportBody
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if err := a.rooms.ReportEvent(c.Request().Context(), session(c).User, roomID, eventID, deref(body.Reason)); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) reportRoom(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	var body reportBody
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if err := a.rooms.ReportRoom(c.Request().Context(), session(c).User, roomID, deref(body.Reason)); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) reportUser(c echo.Context) error {
	v, err := pathArg(c, "userId")
	if err != nil {
		return err
	}
	target := id.UserID(v)
	if _, _, err := target.ParseAndValidateRelaxed(); err != nil || !strings.HasPrefix(v, "@") {
		return merr.InvalidParam("%q is not a valid user ID", v)
	}
	var body reportBody
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if err := a.accounts.ReportUser(c.Request().Context(), session(c).User, target, deref(body.Reason)); err != nil {
		return err
	}
	return noContent(c)
}

// eventReport is one entry of Synapse's GET /_synapse/admin/v1/event_reports.
type eventReport struct {
	ID         uint64 `json:"id"`
	ReceivedTS int64  `json:"received_ts"`
	RoomID     string `json:"room_id"`
	EventID    string `json:"event_id"`
	UserID     string `json:"user_id"` // the reporter
	Sender     string `json:"sender"`  // the reported event's sender
	Reason     string `json:"reason,omitempty"`
}

func (a *API) listEventReports(c echo.Context) error {
	if !session(c).Admin {
		return merr.Forbidden("you are not a server admin")
	}
	all, err := a.rooms.Reports(c.Request().Context())
	if err != nil {
		return err
	}
	out := []eventReport{}
	for _, r := range all {
		if r.Kind == store.ReportEvent {
			out = append(out, eventReport{ID: r.ID, ReceivedTS: r.TS, RoomID: r.RoomID, EventID: r.EventID, UserID: r.Reporter, Sender: r.UserID, Reason: r.Reason})
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"event_reports": out, "total": len(out)})
}
