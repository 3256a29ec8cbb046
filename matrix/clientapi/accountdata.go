package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

func (a *API) routesAccountData(g *echo.Group) {
	a.both(g, http.MethodGet, "/user/:userId/account_data/:type", a.getAccountData, a.auth)
	a.both(g, http.MethodPut, "/user/:userId/account_data/:type", a.putAccountData, a.auth)
	a.both(g, http.MethodGet, "/user/:userId/rooms/:roomId/account_data/:type", a.getAccountData, a.auth)
	a.both(g, http.MethodPut, "/user/:userId/rooms/:roomId/account_data/:type", a.putAccountData, a.auth)
	// MSC3391 (unstable): deleting account data.
	g.DELETE("/unstable/org.matrix.msc3391/user/:userId/account_data/:type", a.deleteAccountData, a.auth)
	g.DELETE("/unstable/org.matrix.msc3391/user/:userId/rooms/:roomId/account_data/:type", a.deleteAccountData, a.auth)
	a.both(g, http.MethodGet, "/user/:userId/rooms/:roomId/tags", a.getTags, a.auth)
	a.both(g, http.MethodPut, "/user/:userId/rooms/:roomId/tags/:tag", a.putTag, a.auth)
	a.both(g, http.MethodDelete, "/user/:userId/rooms/:roomId/tags/:tag", a.deleteTag, a.auth)
}

// roomNID resolves a room path parameter, validating its shape first.
func (a *API) roomNID(roomID id.RoomID) (uint64, error) {
	if len(roomID) < 2 || roomID[0] != '!' {
		return 0, merr.InvalidParam("%q is not a room ID", roomID)
	}
	type nider interface {
		RoomNID(id.RoomID) (uint64, error)
	}
	n, ok := a.eph.(nider)
	if !ok {
		return 0, errors.New("clientapi: ephemeral service cannot resolve rooms")
	}
	return n.RoomNID(roomID)
}

func (a *API) adTarget(c echo.Context) (id.UserID, uint64, string, error) {
	u, err := ownUser(c)
	if err != nil {
		return "", 0, "", err
	}
	rid := c.Param("roomId")
	if rid == "" {
		return u, 0, "", nil
	}
	nid, err := a.roomNID(id.RoomID(rid))
	return u, nid, rid, err
}

func (a *API) getAccountData(c echo.Context) error {
	u, nid, _, err := a.adTarget(c)
	if err != nil {
		return err
	}
	b, err := a.accounts.AccountData(c.Request().Context(), u, nid, c.Param("type"))
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, b)
}

func (a *API) putAccountData(c echo.Context) error {
	u, nid, rid, err := a.adTarget(c)
	if err != nil {
		return err
	}
	body, err := readObject(c)
	if err != nil {
		return err
	}
	if err := a.accounts.PutAccountData(c.Request().Context(), u, nid, rid, c.Param("type"), body); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) deleteAccountData(c echo.Context) error {
	u, nid, rid, err := a.adTarget(c)
	if err != nil {
		return err
	}
	if err := a.accounts.DeleteAccountData(c.Request().Context(), u, nid, rid, c.Param("type")); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) loadTags(c echo.Context) (id.UserID, uint64, string, map[string]json.RawMessage, error) {
	u, nid, rid, err := a.adTarget(c)
	if err != nil {
		return "", 0, "", nil, err
	}
	tags := map[string]json.RawMessage{}
	b, err := a.accounts.AccountData(c.Request().Context(), u, nid, "m.tag")
	if err == nil {
		var content struct {
			Tags map[string]json.RawMessage `json:"tags"`
		}
		if json.Unmarshal(b, &content) == nil && content.Tags != nil {
			tags = content.Tags
		}
	} else if me, ok := merr.As(err); !ok || me.Code != "M_NOT_FOUND" {
		return "", 0, "", nil, err
	}
	return u, nid, rid, tags, nil
}

func (a *API) getTags(c echo.Context) error {
	_, _, _, tags, err := a.loadTags(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"tags": tags})
}

func (a *API) saveTags(c echo.Context, u id.UserID, nid uint64, rid string, tags map[string]json.RawMessage) error {
	b, _ := json.Marshal(map[string]any{"tags": tags})
	return a.accounts.PutAccountData(c.Request().Context(), u, nid, rid, "m.tag", b)
}

func (a *API) putTag(c echo.Context) error {
	u, nid, rid, tags, err := a.loadTags(c)
	if err != nil {
		return err
	}
	body, err := readObject(c)
	if err != nil {
		return err
	}
	tags[c.Param("tag")] = body
	if err := a.saveTags(c, u, nid, rid, tags); err != nil {
		return err
	}
	return noContent(c)
}

func (a *API) deleteTag(c echo.Context) error {
	u, nid, rid, tags, err := a.loadTags(c)
	if err != nil {
		return err
	}
	delete(tags, c.Param("tag"))
	if err := a.saveTags(c, u, nid, rid, tags); err != nil {
		return err
	}
	return noContent(c)
}
