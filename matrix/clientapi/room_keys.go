package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Server-side key backups: versions and the backed-up room keys at three levels (all rooms,
// one room, one session).

func (a *API) routesRoomKeys(g *echo.Group) {
	a.both(g, http.MethodPost, "/room_keys/version", a.createBackup, a.auth)
	a.both(g, http.MethodGet, "/room_keys/version", a.getBackup, a.auth)
	a.both(g, http.MethodGet, "/room_keys/version/:version", a.getBackup, a.auth)
	a.both(g, http.MethodPut, "/room_keys/version/:version", a.putBackup, a.auth)
	a.both(g, http.MethodDelete, "/room_keys/version/:version", a.deleteBackup, a.auth)
	for _, p := range []string{"/room_keys/keys", "/room_keys/keys/:roomId", "/room_keys/keys/:roomId/:sessionId"} {
		a.both(g, http.MethodGet, p, a.getRoomKeys, a.auth)
		a.both(g, http.MethodPut, p, a.putRoomKeys, a.auth)
		a.both(g, http.MethodDelete, p, a.deleteRoomKeys, a.auth)
	}
}

type backupVersionBody struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Version   string          `json:"version"`
}

func (a *API) createBackup(c echo.Context) error {
	var req backupVersionBody
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.Algorithm == "" || len(req.AuthData) == 0 {
		return merr.MissingParam("algorithm and auth_data are required")
	}
	v, err := a.deps.Keys.CreateBackup(c.Request().Context(), session(c).User, req.Algorithm, req.AuthData)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"version": v})
}

func (a *API) getBackup(c echo.Context) error {
	info, err := a.deps.Keys.Backup(c.Request().Context(), session(c).User, c.Param("version"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

func (a *API) putBackup(c echo.Context) error {
	var req backupVersionBody
	if err := readJSON(c, &req); err != nil {
		return err
	}
	if req.Algorithm == "" || len(req.AuthData) == 0 {
		return merr.MissingParam("algorithm and auth_data are required")
	}
	err := a.deps.Keys.UpdateBackup(c.Request().Context(), session(c).User, c.Param("version"), req.Algorithm, req.AuthData, req.Version)
	if err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) deleteBackup(c echo.Context) error {
	if err := a.deps.Keys.DeleteBackup(c.Request().Context(), session(c).User, c.Param("version")); err != nil {
		return err
	}
	return noContent(c)
}

// roomKeysTarget reads the version query parameter and the optional room and session.
func roomKeysTarget(c echo.Context) (version, room, sess string, err error) {
	version = c.QueryParam("version")
	if version == "" {
		return "", "", "", merr.MissingParam("the version query parameter is required")
	}
	return version, c.Param("roomId"), c.Param("sessionId"), nil
}

func (a *API) getRoomKeys(c echo.Context) error {
	version, room, sess, err := roomKeysTarget(c)
	if err != nil {
		return err
	}
	rooms, err := a.deps.Keys.BackupKeys(c.Request().Context(), session(c).User, version, room, sess)
	if err != nil {
		return err
	}
	switch {
	case sess != "":
		return c.JSON(http.StatusOK, rooms[room][sess])
	case room != "":
		sessions := rooms[room]
		if sessions == nil {
			sessions = map[string]json.RawMessage{}
		}
		return c.JSON(http.StatusOK, map[string]any{"sessions": sessions})
	}
	out := map[string]any{}
	for r, s := range rooms {
		out[r] = map[string]any{"sessions": s}
	}
	return c.JSON(http.StatusOK, map[string]any{"rooms": out})
}

func (a *API) putRoomKeys(c echo.Context) error {
	version, room, sess, err := roomKeysTarget(c)
	if err != nil {
		return err
	}
	rooms := map[string]map[string]json.RawMessage{}
	switch {
	case sess != "":
		body, err := readObject(c)
		if err != nil {
			return err
		}
		rooms[room] = map[string]json.RawMessage{sess: body}
	case room != "":
		var req struct {
			Sessions map[string]json.RawMessage `json:"sessions"`
		}
		if err := readJSON(c, &req); err != nil {
			return err
		}
		if req.Sessions == nil {
			return merr.MissingParam("sessions is required")
		}
		rooms[room] = req.Sessions
	default:
		var req struct {
			Rooms map[string]struct {
				Sessions map[string]json.RawMessage `json:"sessions"`
			} `json:"rooms"`
		}
		if err := readJSON(c, &req); err != nil {
			return err
		}
		if req.Rooms == nil {
			return merr.MissingParam("rooms is required")
		}
		for r, v := range req.Rooms {
			rooms[r] = v.Sessions
		}
	}
	counts, err := a.deps.Keys.PutBackupKeys(c.Request().Context(), session(c).User, version, rooms)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, counts)
}

func (a *API) deleteRoomKeys(c echo.Context) error {
	version, room, sess, err := roomKeysTarget(c)
	if err != nil {
		return err
	}
	counts, err := a.deps.Keys.DeleteBackupKeys(c.Request().Context(), session(c).User, version, room, sess)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, counts)
}
