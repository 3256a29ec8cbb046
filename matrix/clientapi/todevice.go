package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Send-to-device messaging.

func (a *API) routesToDevice(g *echo.Group) {
	a.both(g, http.MethodPut, "/sendToDevice/:eventType/:txnId", a.sendToDevice, a.auth)
}

func (a *API) sendToDevice(c echo.Context) error {
	var req struct {
		Messages map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.Messages == nil {
		return merr.MissingParam("messages is required")
	}
	s := session(c)
	err := a.deps.Keys.SendToDevice(c.Request().Context(), s.User, s.Device, c.Param("eventType"), c.Param("txnId"), req.Messages)
	if err != nil {
		return err
	}
	return noContent(c)
}
