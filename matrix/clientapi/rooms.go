package clientapi

import "github.com/labstack/echo/v4"

func (a *API) routesRooms(g *echo.Group) {}
