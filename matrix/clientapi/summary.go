package clientapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/rooms"
)

// The room summary (spec: room_summary.yaml, v1.15; MSC3266's two unstable paths for older
// clients). An access token is optional: without one only rooms open to anyone are shown.

func (a *API) routesRoomSummary(g *echo.Group) {
	g.GET("/v1/room_summary/:roomIdOrAlias", a.roomSummary, a.optionalAuth)
	g.GET("/unstable/im.nheko.summary/summary/:roomIdOrAlias", a.roomSummary, a.optionalAuth)
	g.GET("/unstable/im.nheko.summary/rooms/:roomIdOrAlias/summary", a.roomSummary, a.optionalAuth)
}

// roomSummaryResponse is the spec's RoomSummary plus membership, with MSC3266's unstable
// names of the version and encryption fields for clients that read those.
type roomSummaryResponse struct {
	*rooms.Summary
	AllowedRoomIDs      []string `json:"allowed_room_ids,omitempty"`
	Encryption          string   `json:"encryption,omitempty"`
	RoomVersion         string   `json:"room_version,omitempty"`
	Membership          string   `json:"membership,omitempty"`
	UnstableRoomVersion string   `json:"im.nheko.summary.room_version,omitempty"`
	UnstableEncryption  string   `json:"im.nheko.summary.encryption,omitempty"`
}

func (a *API) roomSummary(c echo.Context) error {
	roomID, err := a.roomIDOrAliasArg(c)
	if err != nil {
		return err
	}
	var user id.UserID
	if s := session(c); s != nil {
		user = s.User
	}
	sum, membership, err := a.rooms.SummaryFor(c.Request().Context(), user, roomID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, roomSummaryResponse{
		Summary:             sum,
		AllowedRoomIDs:      sum.AllowedRoomIDs,
		Encryption:          sum.Encryption,
		RoomVersion:         sum.RoomVersion,
		Membership:          membership,
		UnstableRoomVersion: sum.RoomVersion,
		UnstableEncryption:  sum.Encryption,
	})
}
