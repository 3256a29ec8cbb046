package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
	"github.com/hearth-home/hearth/matrix/rooms"
)

// Room upgrades (spec: room_upgrades.yaml).

func (a *API) routesUpgrade(g *echo.Group) {
	a.both(g, http.MethodPost, "/rooms/:roomId/upgrade", a.upgradeRoom, a.auth, a.rateLimited)
}

func (a *API) upgradeRoom(c echo.Context) error {
	roomID, err := roomIDArg(c)
	if err != nil {
		return err
	}
	var body struct {
		NewVersion         json.RawMessage `json:"new_version"`
		AdditionalCreators json.RawMessage `json:"additional_creators"`
	}
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if len(body.NewVersion) == 0 || string(body.NewVersion) == "null" {
		return merr.MissingParam("new_version is required")
	}
	var version string
	if err := json.Unmarshal(body.NewVersion, &version); err != nil || version == "" {
		return merr.BadJSON("new_version must be a non-empty string")
	}
	req := rooms.UpgradeRequest{Sender: session(c).User, RoomID: roomID, NewVersion: id.RoomVersion(version)}
	if len(body.AdditionalCreators) > 0 && string(body.AdditionalCreators) != "null" {
		var creators []string
		if err := json.Unmarshal(body.AdditionalCreators, &creators); err != nil {
			return merr.BadJSON("additional_creators must be a list of user IDs")
		}
		for _, u := range creators {
			req.AdditionalCreators = append(req.AdditionalCreators, id.UserID(u))
		}
	}
	newID, err := a.rooms.UpgradeRoom(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"replacement_room": newID.String()})
}
