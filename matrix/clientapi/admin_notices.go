package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/servernotices"
)

// Server notices (Synapse admin API send_server_notice; matrix/servernotices does the work).

func (a *API) routesAdminNotices(e *echo.Echo, mw []echo.MiddlewareFunc) {
	e.POST("/_synapse/admin/v1/send_server_notice", a.adminSendServerNotice, mw...)
	e.PUT("/_synapse/admin/v1/send_server_notice/:txnId", a.adminSendServerNotice, mw...)
}

func (a *API) adminSendServerNotice(c echo.Context) error {
	var body struct {
		UserID   *string         `json:"user_id"`
		Content  json.RawMessage `json:"content"`
		Type     *string         `json:"type"`
		StateKey *string         `json:"state_key"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body.UserID == nil {
		return merr.MissingParam("missing required field user_id")
	}
	if len(body.Content) == 0 {
		return merr.MissingParam("missing required field content")
	}
	n := servernotices.Notice{User: *body.UserID, Content: body.Content, StateKey: body.StateKey}
	if body.Type != nil {
		if *body.Type == "" {
			return merr.InvalidParam("type must not be empty")
		}
		n.Type = *body.Type
	}
	if txnID := c.Param("txnId"); txnID != "" {
		s := session(c)
		n.TxnUser, n.TxnDevice, n.TxnID = s.User, s.Device, txnID
	}
	eventID, err := a.deps.Admin.SendServerNotice(c.Request().Context(), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"event_id": eventID.String()})
}
